"""The `sleuth` command line. Commands read noun then verb; user errors end in one clean line."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
import yaml
from rich.console import Console

from bot.config import (
    CONFIG_ENV,
    ConfigError,
    Secrets,
    Settings,
    check_settings,
    config_path,
    load_settings,
    masked,
)
from bot.errors import SleuthError

console = Console()
err_console = Console(stderr=True)

app = typer.Typer(help="Sleuth: a Slack-first on-call agent for data pipelines.",
                  no_args_is_help=True, add_completion=False, rich_markup_mode="rich")
config_app = typer.Typer(help="Check and show the configuration.", no_args_is_help=True)
demo_app = typer.Typer(help="The bundled demo data platform and its fault scenarios.",
                       no_args_is_help=True)
app.add_typer(config_app, name="config")
app.add_typer(demo_app, name="demo")


@app.callback()
def _root(
    ctx: typer.Context,
    config: Annotated[Path | None, typer.Option(
        "--config", "-c", help=f"sleuth.yaml to use (default: ${CONFIG_ENV}, else ./sleuth.yaml).",
        show_default=False)] = None,
) -> None:
    ctx.obj = config_path(config)


def settings_of(ctx: typer.Context) -> Settings:
    return load_settings(ctx.find_root().obj)


@config_app.command("check")
def config_check(ctx: typer.Context) -> None:
    """Validate the configuration and that its sources exist; exit 1 on any problem."""
    path: Path | None = ctx.find_root().obj
    label = str(path) if path else "(embedded defaults)"
    try:
        problems = check_settings(load_settings(path), label)
    except ConfigError as exc:
        problems = exc.problems
    for problem in problems:
        err_console.print(f"[red]✗[/red] {problem}", highlight=False, soft_wrap=True)
    if problems:
        err_console.print(f"{len(problems)} problem(s) in {label}")
        raise typer.Exit(1)
    console.print(f"[green]✓[/green] {label}: configuration is valid")


@config_app.command("show")
def config_show(ctx: typer.Context) -> None:
    """Print the effective configuration (defaults filled in, secrets masked) as YAML."""
    data = masked(settings_of(ctx), Secrets.from_env())
    console.print(yaml.safe_dump(data, sort_keys=False), highlight=False, soft_wrap=True)


@demo_app.command("scenarios")
def demo_scenarios(
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
) -> None:
    """List the fault scenarios with their ground truth."""
    from bot.demo.scenarios import SCENARIOS
    from bot.demo.views import scenarios_table

    if as_json:
        print(json.dumps([s.model_dump(mode="json", exclude={"faults"}) for s in SCENARIOS],
                         indent=2))
    else:
        console.print(scenarios_table(SCENARIOS))


@demo_app.command("run")
def demo_run(
    ctx: typer.Context,
    scenario: Annotated[str | None, typer.Option(
        "--scenario", "-s", help="Scenario to inject (default: demo.scenario).")] = None,
    days: Annotated[int | None, typer.Option(
        "--days", min=1, max=60, help="Healthy days before the fault (default: demo.days).")] = None,
    seed: Annotated[int | None, typer.Option(
        "--seed", help="Seed of the data generator (default: demo.seed).")] = None,
) -> None:
    """Build the healthy history, inject a scenario, run it, and show what broke."""
    from bot.demo.platform import run_scenario
    from bot.demo.scenarios import get_scenario
    from bot.demo.views import outcome_panel

    settings = settings_of(ctx)
    chosen = get_scenario(scenario or settings.demo.scenario)
    outcome = run_scenario(chosen, paths=settings.demo_platform,
                           days=days or settings.demo.days,
                           seed=settings.demo.seed if seed is None else seed,
                           cache=settings.home / "demo" / "cache", console=console)
    console.print(outcome_panel(outcome))
    console.print("[dim]Other scenarios: `sleuth demo scenarios`; inject one with "
                  "`sleuth demo run --scenario NAME`.[/dim]")


def main() -> None:
    """Entry point: user errors become one clean message and exit code 2, never a traceback."""
    try:
        app()
    except SleuthError as exc:
        err_console.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)
