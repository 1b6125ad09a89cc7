"""The `sleuth` command line. Commands read noun then verb; user errors end in one clean line."""

from __future__ import annotations

import atexit
import json
import os
import shutil
import sys
from collections.abc import Callable
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
evals_app = typer.Typer(help="Evals: investigations scored against the demo's ground truth.",
                        no_args_is_help=True)
app.add_typer(config_app, name="config")
app.add_typer(demo_app, name="demo")
app.add_typer(evals_app, name="evals")
case_app = typer.Typer(help="Case files: what an investigation did and cited.",
                       no_args_is_help=True)
app.add_typer(case_app, name="case")


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
    investigate: Annotated[bool, typer.Option(
        "--investigate/--no-investigate", help="Investigate each issue intake opens.")] = True,
    once: Annotated[bool, typer.Option(
        "--once", help="Exit when the investigations end (for scripts), instead of running "
                       "until Ctrl-C.")] = False,
) -> None:
    """Build the healthy history and inject a scenario; start the local Slack workspace, the
    bot and the scheduler; file what broke into issues, post their cards and investigate each
    one live in its thread. Runs until Ctrl-C (`--once`: until the reports are posted)."""
    from bot.demo.live import demo_settings, start_live
    from bot.demo.platform import run_scenario
    from bot.demo.scenarios import get_scenario
    from bot.demo.views import outcome_panel
    from bot.intake.runtime import reset_intake

    settings = settings_of(ctx)
    chosen = get_scenario(scenario or settings.demo.scenario)
    outcome = run_scenario(chosen, paths=settings.demo_platform,
                           days=days or settings.demo.days,
                           seed=settings.demo.seed if seed is None else seed,
                           cache=settings.home / "demo" / "cache", console=console)
    console.print(outcome_panel(outcome))
    engine = _engine(settings)
    if settings.store.url is None:  # the default store belongs to the demo's world
        reset_intake(engine, settings)
        # and so does the workspace: the last demo's cards name issue ids that now mean others
        shutil.rmtree(settings.home / "workspace", ignore_errors=True)
    demo, results, intake = start_live(demo_settings(settings, investigate), engine, console)
    _demo_intake(engine, results, chosen.truth.expected_issues)
    console.print(f"Slack workspace: [bold]{demo.workspace.url}[/bold]  (open it in a "
                  "browser: issue cards, live investigation threads, buttons, /investigate)",
                  highlight=False)
    demo.publish(intake)
    if once:
        demo.bot.bot.jobs.wait()
        demo.stop(wait=True)
    else:
        console.print("[dim]Running: the scheduler polls every minute. Ctrl-C stops.[/dim]")
        until_interrupted(demo.stop)
    console.print("[dim]Other scenarios: `sleuth demo scenarios`; inject one with "
                  "`sleuth demo run --scenario NAME`. `sleuth signals`, `sleuth issues` "
                  "show what intake stored.[/dim]")
    _exit_after_threads()


def until_interrupted(stop: Callable[[], None]) -> None:
    """Wait for Ctrl-C, then `stop` (also when something else ends the wait)."""
    import time

    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        console.print("stopping…")
    finally:
        stop()


def _exit_after_threads() -> None:
    """End the process now that everything is stopped and stored. Python's teardown after
    the bot's threads makes DuckDB's bindings (nanobind) print a screen of harmless "leaked
    instance" warnings about objects the interpreter never frees at exit."""
    atexit._run_exitfuncs()  # what a normal exit runs first (multiprocessing's cleanup…)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _demo_intake(engine, results: list, expected: int) -> None:
    """What each source saw, what the noise filter dropped and why, and the issues opened,
    against the scenario's expected count."""
    from bot.intake.views import (
        issues_table,
        polls_table,
        signals_table,
        stored_issues,
        stored_signals,
    )

    console.print(polls_table(results))
    filtered = stored_signals(engine, filtered=True)
    if filtered:
        console.print(signals_table(filtered, "Dropped as noise (`sleuth signals --filtered`)"))
    opened = stored_issues(engine)
    console.print(issues_table(opened, "Issues opened"))
    mark = "[green]✓[/green]" if len(opened) == expected else "[red]✗[/red]"
    console.print(f"{mark} {len(opened)} issue(s) opened; the scenario expects {expected}")


def _engine(settings: Settings):
    from bot.store import open_store

    return open_store(settings.store_url)


@app.command("run")
def run(
    ctx: typer.Context,
    once: Annotated[bool, typer.Option(
        "--once", help="Poll every source once, file what it saw, print the result and exit "
                       "(no Slack).")] = False,
    slack: Annotated[bool, typer.Option(
        "--slack/--no-slack", help="Start the Slack app (cards, threads, buttons); "
                                   "--no-slack prints new issues here instead.")] = True,
) -> None:
    """Run Sleuth: the Slack app and the scheduler that polls every source on its interval,
    files what they see into issues, posts each issue's card and investigates. Ctrl-C stops."""
    import time

    from bot.intake.runtime import build_poller
    from bot.intake.scheduler import start_scheduler, stop_scheduler
    from bot.intake.views import issues_table, polls_table, stored_issues

    settings = settings_of(ctx).with_defaults()
    engine = _engine(settings)

    def show(outcome) -> None:
        touched = set(outcome.opened) | set(outcome.updated)
        issues = [i for i in stored_issues(engine, everything=True) if i.id in touched]
        console.print(issues_table(issues, title="New or updated issues"))

    bot = scheduler = None
    try:  # Ctrl-C at any point, even while starting, stops what started and exits 0
        if slack and not once:
            from bot.slack.runtime import on_outcome, start_bot

            bot = start_bot(settings, engine)
            where = bot.url or "Socket Mode"
            console.print(f"Slack app: requests at {where}; Web API "
                          f"{bot.bot.poster.client.base_url}", highlight=False, soft_wrap=True)
        poller = build_poller(settings, engine, notice=lambda text: err_console.print(
                                  f"[yellow]![/yellow] {text}", highlight=False, soft_wrap=True),
                              on_outcome=None if once else on_outcome(bot.bot) if bot else show)
        for name, scheduled in poller.sources.items():
            for problem in scheduled.source.check():  # a path cut across lines cannot be copied
                err_console.print(f"[yellow]![/yellow] {name}: {problem}", highlight=False,
                                  soft_wrap=True)
        if once:
            results, _ = poller.poll_all()
            console.print(polls_table(results))
            console.print(issues_table(stored_issues(engine), title="Open issues"))
            return
        scheduler = start_scheduler(poller, settings.store_url)
        if bot is not None:
            bot.scheduler = scheduler
        console.print(f"polling {len(poller.sources)} source(s); Ctrl-C stops")
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        console.print("stopping…")
    finally:
        if bot is not None:
            bot.stop()
        elif scheduler is not None:
            stop_scheduler(scheduler)
    _exit_after_threads()


@app.command("signals")
def signals(
    ctx: typer.Context,
    filtered: Annotated[bool, typer.Option(
        "--filtered", help="Only what the noise filter dropped, with its rule and reason.")]
        = False,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="How many, newest first.")]
        = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
) -> None:
    """List stored signals, newest first, with what intake decided for each."""
    from bot.intake.views import signals_table, stored_signals

    found = stored_signals(_engine(settings_of(ctx)), filtered=filtered, limit=limit)
    if as_json:
        print(json.dumps([s.model_dump(mode="json") for s in found], indent=2))
    else:
        console.print(signals_table(found, "Filtered signals" if filtered else "Signals"))


issues_app = typer.Typer(help="Issues: list them, resolve them.", invoke_without_command=True)
app.add_typer(issues_app, name="issues")


@issues_app.callback()
def issues(
    ctx: typer.Context,
    everything: Annotated[bool, typer.Option(
        "--all", help="Muted and resolved issues too.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
) -> None:
    """List issues (open ones by default), most recently seen first."""
    if ctx.invoked_subcommand is not None:
        return
    from bot.intake.views import issues_table, stored_issues

    found = stored_issues(_engine(settings_of(ctx)), everything=everything)
    if as_json:
        print(json.dumps([i.model_dump(mode="json") for i in found], indent=2))
    else:
        console.print(issues_table(found, "Issues" if everything else "Open issues"))


@issues_app.command("resolve")
def issues_resolve(
    ctx: typer.Context,
    issue: Annotated[int, typer.Argument(help="The issue's id.")],
    note: Annotated[str, typer.Option("--note", "-m", help="How it was resolved, one line.")],
) -> None:
    """Resolve an issue with a one-line resolution; issue memory keeps it for next time."""
    from bot.resolve import resolve_issue

    settings = settings_of(ctx).with_defaults()
    done = resolve_issue(settings, _engine(settings), issue, note)
    console.print(f"issue #{done.id} resolved; issue memory will recall it: {done.title}",
                  highlight=False)


@app.command("investigate")
def investigate_cmd(
    ctx: typer.Context,
    question: Annotated[str | None, typer.Argument(
        help="A free-text question, when neither --scenario nor --issue is given.",
        show_default=False)] = None,
    scenario: Annotated[str | None, typer.Option(
        "--scenario", "-s", help="Run a demo scenario and intake, then investigate the issue "
                                 "it opened.")] = None,
    issue: Annotated[int | None, typer.Option("--issue", "-i", help="A stored issue's id.")]
        = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON only.")]
        = False,
) -> None:
    """Investigate an issue, a demo scenario or a question: the live trace, then the report.

    Without API keys the deterministic offline policy investigates, and says so. The case
    file is written to <home>/cases/<id>.md and .json.
    """
    from rich.markdown import Markdown

    from bot.investigate import investigate_issue, investigate_question, investigate_scenario

    if sum(x is not None for x in (question, scenario, issue)) != 1:
        raise SleuthError("give one of --scenario NAME, --issue ID or a question in quotes")
    settings = settings_of(ctx)  # unfilled: a scenario resets the demo's default store
    engine = _engine(settings)
    live = None if as_json else console
    if scenario is not None:
        done = investigate_scenario(settings, engine, scenario, console=live)
        if not done:
            err_console.print(f"scenario {scenario} opened no issue: nothing to investigate")
            return
    elif issue is not None:
        done = [investigate_issue(settings, engine, issue, console=live)]
    else:
        done = [investigate_question(settings, engine, question or "", console=live)]
    if as_json:
        reports = [d.result.report.model_dump(mode="json") for d in done]
        print(json.dumps(reports[0] if len(reports) == 1 else reports, indent=2))
        return
    for d in done:
        console.rule(f"investigation {d.id} · {d.policy}")
        console.print(Markdown(d.result.report.to_markdown()))
        console.print(f"[dim]case file: {d.case_paths[0]} and .json · {d.seconds:.1f} s[/dim]",
                      highlight=False)


@case_app.command("verify")
def case_verify(
    ctx: typer.Context,
    investigation: Annotated[int, typer.Argument(help="The investigation's id (its case file).")],
) -> None:
    """Re-resolve every citation of a case: re-run each query, re-read each log line and
    code blob; exit 1 if any no longer holds."""
    from sqlmodel import Session, select

    from agents.casefile import CaseFile
    from bot.casecheck import verify_case
    from bot.store.models import CaseFile as CaseRow
    from bot.world import build_world

    settings = settings_of(ctx).with_defaults()
    with Session(_engine(settings)) as session:
        row = session.exec(select(CaseRow).where(CaseRow.investigation_id == investigation)
                           ).first()
    if row is None:
        raise SleuthError(f"no case file for investigation {investigation} "
                          "(`sleuth investigate` writes one)")
    checks = verify_case(CaseFile.model_validate(row.body), build_world(settings))
    style = {"holds": "green", "changed": "yellow", "broken": "red", "unchecked": "dim"}
    for check in checks:
        console.print(f"[{style[check.verdict]}]{check.verdict:9}[/] {check.citation.kind:6} "
                      f"{check.citation.reference} — {check.note}", highlight=False)
    failed = [c for c in checks if c.verdict in ("changed", "broken")]
    console.print(f"{len(checks) - len(failed)} of {len(checks)} citation(s) hold")
    if failed:
        raise typer.Exit(1)


@evals_app.command("run")
def evals_run(
    ctx: typer.Context,
    policy: Annotated[str, typer.Option(
        "--policy", help="offline (the deterministic policy) or live (the configured models).")
        ] = "offline",
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Run every demo scenario end to end and score each report against ground truth."""
    from evals.investigations import run_evals, table

    if policy not in ("offline", "live"):
        raise SleuthError(f"--policy is offline or live, not {policy!r}")
    run = run_evals(settings_of(ctx), policy=policy,  # type: ignore[arg-type]
                    console=None if as_json else err_console)
    if as_json:
        print(run.model_dump_json(indent=2))
    else:
        console.print(table(run))


@app.command("workspace")
def workspace(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(
        "--host", help="Interface to listen on (default: workspace.host).")] = None,
    port: Annotated[int | None, typer.Option(
        "--port", min=0, max=65535, help="Port; 0 picks a free one (default: workspace.port).")]
        = None,
) -> None:
    """Run the local Slack-compatible workspace: a page for people, Slack's API for the bot.

    Ctrl-C stops. Its history is kept under the data directory.
    """

    from bot.slack.workspace import start_workspace
    from bot.slack.workspace.credentials import credentials_path

    settings = settings_of(ctx)
    config = settings.workspace
    running = start_workspace(settings.home, config.port if port is None else port,
                              host=host or config.host, request_url=config.request_url or "")
    console.print(f"Slack workspace: [bold]{running.url}[/bold]", highlight=False)
    console.print(f"Web API: {running.api_url}  (slack_sdk WebClient base_url)", highlight=False)
    console.print(f"Credentials (tokens, signing secret): {credentials_path(settings.home)}",
                  highlight=False)
    console.print(f"Events go to {config.request_url or '(no Request URL)'} unless the app "
                  "connects over Socket Mode. Ctrl-C stops.", highlight=False)
    until_interrupted(running.stop)


def main() -> None:
    """Entry point: user errors become one clean message and exit code 2, never a traceback."""
    try:
        app()
    except SleuthError as exc:
        err_console.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)
