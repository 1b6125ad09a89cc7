"""The investigation's world over the user's configured sources (the demo platform's by
default): the implementations of `agents.world`'s protocols, and the tools built on them.

`build_world(settings)` opens each part lazily enough to be cheap (no query runs, no file is
read but the dbt manifest and the DAG file for the map); `World.toolsets()` gives the tools
each agent gets, bounded by `settings.tools`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from agents.tools.base import Tool
from agents.tools.code import code_tools
from agents.tools.data import data_tools
from agents.tools.logs import log_tools
from agents.tools.map import map_tools
from agents.tools.memory import memory_tools
from agents.tools.metrics import metric_tools
from agents.tools.runs import run_tools
from bot.config import Secrets, Settings, ToolsConfig
from bot.intake.runtime import system_map
from bot.sources.dag_runs import dag_runs_source
from bot.sources.metrics import MetricsSource
from bot.vectors.index import open_index
from bot.world.code import GitRepo
from bot.world.logs import LogFiles
from bot.world.map import MapView
from bot.world.memory import TABLE, IssueMemory
from bot.world.metrics import Metrics
from bot.world.runs import Runs
from bot.world.warehouse import DuckDbWarehouse, SqlAlchemyWarehouse, make_warehouse

__all__ = ["World", "build_world"]


@dataclass
class World:
    """Every protocol implementation one investigation reads, and the bounds of its tools."""

    warehouse: DuckDbWarehouse | SqlAlchemyWarehouse
    logs: LogFiles
    code: GitRepo | None
    metrics: Metrics
    runs: Runs
    map: MapView
    memory: IssueMemory
    limits: ToolsConfig = field(default_factory=ToolsConfig)
    known_secrets: tuple[str, ...] = ()

    def toolsets(self) -> tuple[dict[str, list[Tool]], list[Tool]]:
        """(each subagent's tools by name, the orchestrator's own tools)."""
        c, known = self.limits, self.known_secrets
        subagents = {
            "data": data_tools(self.warehouse, row_limit=c.sql_row_limit,
                               timeout_s=c.sql_timeout_seconds, known_secrets=known),
            "logs": [*log_tools(self.logs, max_lines=c.log_lines, max_read=c.log_read_lines,
                                known_secrets=known),
                     *run_tools(self.runs, max_log_lines=c.log_read_lines, known_secrets=known)],
            "metrics": metric_tools(self.metrics, default_days=c.metric_days,
                                    known_secrets=known),
        }
        if self.code is not None:
            subagents["code"] = code_tools(
                self.code, self.map.code_paths(), window_days=c.code_window_days,
                max_diff_chars=c.diff_chars, max_file_lines=c.file_lines, known_secrets=known)
        orchestrator = [*map_tools(self.map, known_secrets=known),
                        *memory_tools(self.memory, known_secrets=known)]
        return subagents, orchestrator


def build_world(settings: Settings, secrets: Secrets | None = None) -> World:
    """The world of the settings (demo defaults filled in)."""
    settings = settings.with_defaults()
    src = settings.sources
    secrets = secrets or Secrets.from_env()
    known = tuple(s.get_secret_value() for _, s in secrets if s is not None)
    logs = LogFiles(src.logs or [])
    repo = src.git.repo
    code = GitRepo(repo) if repo is not None and (repo / ".git").exists() else None
    places = {"code": str(repo) if repo else "", "dbt_project": str(src.dbt.project_dir or ""),
              "docs": str(src.dbt.artifacts_dir or ""),
              "logs": ", ".join(p for s in src.logs or [] for p in s.paths),
              "warehouse": _safe_url(src.warehouse.url or "")}
    return World(
        warehouse=make_warehouse(src.warehouse.url or "", settings.store_url),
        logs=logs,
        code=code,
        metrics=Metrics(MetricsSource.from_settings(settings).backend),
        runs=Runs(dag_runs_source(settings, secrets).backend, label_of=logs.label_ending),
        map=MapView(system_map(settings), repo=repo, logs=src.logs, places=places),
        memory=IssueMemory(open_index(settings, TABLE)),
        limits=settings.tools,
        known_secrets=known,
    )


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL: nothing to hide, nothing to show
        return ""

