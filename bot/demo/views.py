"""How the demo shows itself in a terminal: pure functions from data to rich renderables."""

from __future__ import annotations

from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from bot.demo.platform import ScenarioOutcome
from bot.demo.scenarios import Scenario


def scenarios_table(scenarios: list[Scenario]) -> Table:
    table = Table(title="Fault scenarios", show_lines=False)
    for column in ("scenario", "what breaks", "root cause", "category", "sev", "issues"):
        table.add_column(column, overflow="fold")
    for s in scenarios:
        causes = s.truth.root_causes
        table.add_row(s.name, s.title,
                      "\n".join(c.node for c in causes) or "— (noise)",
                      "\n".join(c.category for c in causes) or "transient",
                      s.truth.severity, str(s.truth.expected_issues))
    return table


def outcome_panel(outcome: ScenarioOutcome) -> Panel:
    fault = outcome.fault
    days = Table.grid(padding=(0, 2))
    for day in [*outcome.history, fault]:
        marker = "[bold red]fault[/]" if day is fault else ""
        state = f"[green]{day.state}[/]" if day.state == "success" else f"[red]{day.state}[/]"
        notes = ", ".join([*(f"failed {t}" for t in day.failed),
                           *(f"retried {t}" for t in day.retried)])
        days.add_row(str(day.day), state, f"{day.seconds:.1f}s", notes, marker)
    truth = outcome.truth
    lines = [Text.from_markup(f"[bold]{outcome.title}[/]  ({outcome.scenario}, {truth.severity}, "
                              f"expected issues: {truth.expected_issues})")]
    for cause in truth.root_causes:
        sha = f" @ {cause.culprit.sha[:10]}" if cause.culprit.sha else ""
        lines.append(Text(f"root cause: {cause.node} [{cause.category}] — "
                          f"{cause.culprit.ref}{sha}"))
    symptoms = Table.grid(padding=(0, 1))
    for check in outcome.checks:
        mark = "[green]✓[/]" if check.observed else "[red]✗[/]"
        symptoms.add_row(Text.from_markup(mark), check.symptom.kind, Text(check.evidence))
    cache = " (healthy history from cache)" if outcome.history_from_cache else ""
    footer = Text(f"{outcome.root}  ·  {outcome.seconds:.1f}s{cache}", style="dim")
    return Panel(Group(days, Text(""), *lines, Text("symptoms:"), symptoms, Text(""), footer),
                 title="sleuth demo", expand=False)
