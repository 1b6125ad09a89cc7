"""Assembling intake from the settings: the sources, the system map, filter and grouping.

One place decides which sources run: every configured one, and for each part left out of
the config the demo platform's (see `Settings.with_defaults`). A source whose `check()`
finds a problem is still scheduled (it may come up later: a dbt target folder appears after
the first build) and the problem is said once at start.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine

from agents.noise_classifier import NoiseClassifier
from bot.config import Secrets, Settings
from bot.demo.paths import DAG_ID
from bot.intake.grouping import Grouper, GroupingSettings
from bot.intake.noise import NoiseFilter, TriesTaskStates
from bot.intake.pipeline import Intake, IntakeOutcome
from bot.intake.scheduler import Backoff, Notice, Poller, ScheduledSource
from bot.intake.templates import Templater
from bot.models import provider_for, text_completion
from bot.sources.base import Source
from bot.sources.dag_runs import DagRunsSource, dag_runs_source
from bot.sources.dbt_artifacts import DbtArtifactsSource
from bot.sources.logfiles import LogFileSource
from bot.sources.metrics import MetricsSource
from bot.sources.tables import TableMonitorSource
from bot.systemmap import SystemMap, TaskInfo, demo_tasks, read_lineage
from bot.vectors.embedders import make_embedder
from bot.vectors.index import VectorIndex, vectors_dir


@dataclass
class IssueVectors:
    """Open issues' texts in the vector index, as grouping's `SimilarIssues`."""

    index: VectorIndex

    def nearest(self, text: str, k: int) -> list[tuple[int, float]]:
        return [(int(hit.id), hit.similarity)
                for hit in self.index.search(text, k=k, where={"status": "open"})]

    def remember(self, issue_id: int, text: str) -> None:
        self.index.upsert(str(issue_id), text, {"status": "open"})

    def forget(self, issue_id: int) -> None:
        self.index.delete(str(issue_id))


def build_sources(settings: Settings, runs: DagRunsSource) -> list[Source]:
    src = settings.sources
    dbt = src.dbt
    templater = Templater()  # one for every log source, so template ids agree
    sources: list[Source] = [
        DbtArtifactsSource("dbt", Path(dbt.artifacts_dir or "."), dbt.archive_dir)]
    sources += [LogFileSource(config, templater) for config in src.logs or []]
    sources.append(runs)
    sources.append(MetricsSource.from_settings(settings))
    sources.append(TableMonitorSource.from_settings(settings))
    return sources


def system_map(settings: Settings) -> SystemMap:
    """dbt lineage plus the DAG's tasks (the demo's DAG file; a user's DAGs from config)."""
    dbt = settings.sources.dbt
    lineage = read_lineage(dbt.artifacts_dir)
    tasks: list[TaskInfo] = []
    repo = settings.sources.git.repo
    if repo is not None and repo == settings.demo_platform.repo and repo.is_dir():
        tasks = demo_tasks(repo, DAG_ID)
    return SystemMap(lineage, tasks)


def open_issue_index(settings: Settings) -> VectorIndex:
    """The open issues' vectors, kept per store: ids of one store mean nothing in another."""
    key = hashlib.blake2b(settings.store_url.encode(), digest_size=6).hexdigest()
    return VectorIndex(vectors_dir(settings.home) / f"store-{key}", "open_issues",
                       make_embedder(settings.embeddings))


def noise_classifier(settings: Settings) -> NoiseClassifier | None:
    """The model classifier when `intake.noise.classifier.enabled` and its key is set;
    without a key the filter's `check()` says the classifier is enabled but missing."""
    if not settings.intake.noise.classifier.enabled:
        return None
    secrets = Secrets.from_env()
    provider = provider_for(settings, "classifier", secrets)
    if provider is None:
        return None
    known = [s.get_secret_value() for _, s in secrets if s is not None]
    return NoiseClassifier(text_completion(provider), known_secrets=known)


def build_poller(settings: Settings, engine: Engine, *, notice: Notice | None = None,
                 on_outcome: Callable[[IntakeOutcome], None] | None = None) -> Poller:
    settings = settings.with_defaults()
    intake_config = settings.intake
    runs = dag_runs_source(settings)
    grouping = intake_config.grouping
    grouper = Grouper(
        system_map(settings),
        GroupingSettings(similarity_threshold=grouping.similarity_threshold,
                         lineage_window=grouping.lineage_window,
                         default_channel=grouping.default_channel),
        IssueVectors(open_issue_index(settings)),
    )
    noise = NoiseFilter(intake_config.noise, TriesTaskStates(runs.backend),
                        noise_classifier(settings))
    schedule = intake_config.schedule
    sources = [ScheduledSource(s, schedule.interval(s.name))
               for s in build_sources(settings, runs)]
    return Poller(engine, Intake(engine, grouper, noise), sources,
                  backoff=Backoff(schedule.backoff_first, schedule.backoff_longest),
                  notice=notice, on_outcome=on_outcome)


def reset_intake(engine: Engine, settings: Settings) -> None:
    """Forget every signal, issue and source cursor, and the open-issue vectors: the demo
    rebuilds its platform from scratch, so what intake knew of the last one is stale.
    Investigations are kept, unlinked from their issue; the record of Slack messages goes
    (it names issue ids that will mean other issues)."""
    from sqlmodel import Session, delete, update

    from bot.store.models import Investigation, Issue, Signal, SlackMessage, SourceState

    with Session(engine) as session:
        # investigations stay (their case files too), no longer tied to an issue that is gone
        session.exec(update(Investigation).values(issue_id=None))  # type: ignore[call-overload]
        for table in (SlackMessage, Signal, Issue, SourceState):
            session.exec(delete(table))  # type: ignore[call-overload]
        session.commit()
    shutil.rmtree(open_issue_index(settings).directory, ignore_errors=True)
