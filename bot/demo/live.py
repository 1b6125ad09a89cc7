"""`sleuth demo run` (and `make demo`): the whole product on this machine, nothing configured.

The demo platform runs a scenario; the local Slack workspace, the bot and the scheduler start;
intake files what broke into issues whose cards appear in the workspace, and each one is
investigated live in its thread. Then it keeps running (the page stays usable: click, react,
type `/investigate`) until Ctrl-C, or with `once` exits when the investigations end.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass

from rich.console import Console
from rich.markdown import Markdown
from sqlalchemy.engine import Engine

from bot.config import Settings
from bot.intake.pipeline import IntakeOutcome
from bot.intake.runtime import build_poller
from bot.intake.scheduler import Poller, PollResult, start_scheduler
from bot.investigate import Investigated
from bot.slack.runtime import RunningBot, on_outcome, start_bot
from bot.slack.workspace import APPROVER_USER_ID, RunningWorkspace, start_workspace


@dataclass
class LiveDemo:
    workspace: RunningWorkspace
    bot: RunningBot
    poller: Poller

    def publish(self, outcome: IntakeOutcome) -> None:
        """Cards for what the first poll found, and their investigations; later polls (the
        scheduler's) do this on their own."""
        publish = on_outcome(self.bot.bot)
        publish(outcome)
        self.poller.on_outcome = publish
        self.bot.scheduler = start_scheduler(self.poller,
                                             self.bot.bot.settings.with_defaults().store_url)

    def stop(self, wait: bool = False) -> None:
        """Stop; `wait` lets running investigations end first (Ctrl-C does not wait)."""
        self.bot.stop(wait=wait)
        self.workspace.stop()
        # Warehouse connections left in reference cycles go now, not at interpreter exit,
        # where DuckDB's bindings report them as leaks.
        gc.collect()


def demo_settings(settings: Settings, investigate: bool) -> Settings:
    """The demo's Slack side: every issue investigated (unless told not to), the demo's
    approver may approve, and the bot on a free port (the workspace is told where)."""
    slack = settings.slack.model_copy(update={
        "auto_investigate": "SEV4" if investigate else None,
        "approvers": settings.slack.approvers or [APPROVER_USER_ID],
        "port": 0,
    })
    return settings.model_copy(update={"slack": slack})


def start_live(settings: Settings, engine: Engine, console: Console
               ) -> tuple[LiveDemo, list[PollResult], IntakeOutcome]:
    """Start the workspace and the bot, and poll once: the demo, what each source saw, and
    what intake made of it (not yet in Slack: `LiveDemo.publish` posts it)."""
    config = settings.workspace
    workspace = start_workspace(settings.home, config.port, host=config.host, request_url="")
    say = lambda text: console.print(f"[yellow]![/yellow] {text}")
    try:
        bot = start_bot(settings, engine, console=console,
                        on_done=lambda done: _show_report(console, done))
    except BaseException:
        workspace.stop()
        raise
    demo = LiveDemo(workspace, bot, build_poller(settings, engine, notice=say))
    try:
        results, outcome = demo.poller.poll_all()
    except BaseException:
        demo.stop()
        raise
    return demo, results, outcome


def _show_report(console: Console, done: Investigated) -> None:
    console.print(Markdown(done.result.report.to_markdown()))
    console.print(f"[dim]{done.policy} · case file: {done.case_paths[0]} and .json · "
                  f"{done.seconds:.1f} s[/dim]", highlight=False)
