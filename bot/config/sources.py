"""What Sleuth watches: dbt, the warehouse, git, log files, metrics, Airflow, tables.
Anything left out points at the bundled demo platform (`Settings.with_defaults`)."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag, ValidationError, field_validator, model_validator

from bot.config.base import Duration, _Strict
from bot.demo.paths import DBT_PROJECT_NAME
from bot.intake.anomaly import DetectorConfig
from bot.intake.baseline import BaselineConfig


class DbtConfig(_Strict):
    """A dbt project whose artifacts (run_results, manifest, sources) Sleuth reads."""

    project_dir: Path | None = Field(None, description="Folder holding dbt_project.yml.")
    profiles_dir: Path | None = Field(None, description="Folder holding profiles.yml.")
    target: str | None = Field(None, description="dbt target; default the profile's default.")
    artifacts_dir: Path | None = Field(
        None, description="Where run artifacts are kept; default `<project_dir>/target`."
    )
    archive_dir: Path | None = Field(
        None, description="A folder of per-run copies of the artifacts (`<run_id>/*.json`), "
                          "if your runner keeps them; the demo platform does.")


class WarehouseConfig(_Strict):
    """The warehouse Sleuth samples (read-only)."""

    url: str | None = Field(
        None, description="`duckdb:///path/to/file.duckdb` or any SQLAlchemy URL."
    )


class GitConfig(_Strict):
    """The repository holding the pipeline's code."""

    repo: Path | None = Field(None, description="Path of a local git checkout.")


class LogSourceConfig(_Strict):
    """A family of log files read by glob."""

    name: str = Field(description="A short name shown in signals and citations.")
    paths: list[str] = Field(min_length=1, description="Glob patterns; `**` descends folders.")
    format: Literal["airflow", "jsonl", "text"] = Field(
        "airflow", description="Airflow task logs, JSON lines, or text with `header_pattern`."
    )
    header_pattern: str | None = Field(
        None, description="For `text`: a regex with named groups, the message in `content`."
    )

    @field_validator("header_pattern")
    @classmethod
    def _valid_header(cls, pattern: str | None) -> str | None:
        if pattern is not None:
            try:
                compiled = re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"a valid regular expression ({exc})") from exc
            if "content" not in compiled.groupindex:
                raise ValueError("a regex with a named group (?P<content>...) for the message")
        return pattern

    @model_validator(mode="after")
    def _text_needs_header(self) -> LogSourceConfig:
        if self.format == "text" and not self.header_pattern:
            raise ValueError("a header_pattern, which format 'text' needs")
        return self


class MetricWatch(_Strict):
    """One family of series to judge: a query, and how to judge each series it returns."""

    name: str = Field(description="A short name, unique in the section; in signals and cursors.")
    query: str = Field(description="Prometheus: PromQL. Demo store: `name{label=\"v\",…}`, or "
                                   "`a{…} / b{…}`, a ratio of two metrics at the same run.")
    mode: Literal["stream", "batch"] = Field(
        "batch", description="`stream`: dense series (per-minute rates), the streaming detector; "
                             "`batch`: one point per run (row counts, durations), judged "
                             "against earlier runs. With Prometheus, a batch query should "
                             "give one point per run, e.g. `last_over_time(x[1d])` at step 1d.")
    step: Duration = Field(timedelta(minutes=1),
                            description="Prometheus: the query's resolution. Ignored by the demo "
                                        "store, which keeps every sample.")
    lookback: Duration | None = Field(
        None, description="History read on the first poll (batch: on every poll, runs may be "
                          "recorded late); default 62 days for batch, 7 days for stream.")
    asset: str | None = Field(
        None, description="The signals' asset, `{label}` filled from the series' labels, e.g. "
                          "`task.etl.{task_id}`; default inferred from dag_id+task_id, model, "
                          "or source+table labels, else `metric:<series>`.")
    sensitivity: DetectorConfig | BaselineConfig | None = Field(
        None, description="Overrides of the detector's settings (stream: DetectorConfig) or "
                          "the baseline's (batch: BaselineConfig, e.g. min_change).")

    @model_validator(mode="before")
    @classmethod
    def _sensitivity_for_mode(cls, data: Any) -> Any:
        """Validate `sensitivity` as the settings of the watch's own mode, not a guess."""
        if isinstance(data, dict) and isinstance(data.get("sensitivity"), dict):
            kind = DetectorConfig if data.get("mode") == "stream" else BaselineConfig
            try:
                data = {**data, "sensitivity": kind.model_validate(data["sensitivity"])}
            except ValidationError as exc:
                found = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}"
                                  for e in exc.errors())
                raise ValueError(f"sensitivity to be {kind.__name__} settings for a "
                                 f"{data.get('mode', 'batch')} watch ({found})") from None
        return data

    @model_validator(mode="after")
    def _check(self) -> MetricWatch:
        if self.step <= timedelta(0):
            raise ValueError("a positive step")
        wanted = DetectorConfig if self.mode == "stream" else BaselineConfig
        if self.sensitivity is not None and not isinstance(self.sensitivity, wanted):
            raise ValueError(f"sensitivity of a {self.mode} watch to be {wanted.__name__} settings")
        return self

    @property
    def window(self) -> timedelta:
        return self.lookback or (timedelta(days=62) if self.mode == "batch" else timedelta(days=7))

    @property
    def detector(self) -> DetectorConfig:
        wanted = self.sensitivity
        return wanted if isinstance(wanted, DetectorConfig) else DetectorConfig()

    @property
    def baseline(self) -> BaselineConfig:
        wanted = self.sensitivity
        return wanted if isinstance(wanted, BaselineConfig) else BaselineConfig()


def _unique_watches(watches: list[MetricWatch] | None) -> list[MetricWatch] | None:
    names = [w.name for w in watches or []]
    if len(set(names)) != len(names):
        raise ValueError(f"watches with distinct names (found {sorted(names)})")
    return watches


def _demo_watch(name: str, query: str, min_change: float, **extra: Any) -> MetricWatch:
    # Tuned on the demo's history (see bot/demo/symptoms.py): weekdays move row counts by up
    # to a third, so raw counts need a 50% change; ratios of metrics that share the weekly
    # rhythm are steady and may be strict. Three earlier runs suffice: `sleuth demo` may
    # build a short history, and the demo's healthy spread is small.
    return MetricWatch(name=name, query=query, sensitivity=BaselineConfig(
        min_history=3, min_change=min_change), **extra)


DEMO_WATCHES: tuple[MetricWatch, ...] = (
    _demo_watch("rows_loaded", "rows_loaded", 0.5),
    _demo_watch("orders_per_order_item", 'rows_loaded{source="shop",table="orders"} / '
                                         'rows_loaded{source="shop",table="order_items"}', 0.2),
    _demo_watch("orders_enriched_per_order", 'model_row_count{model="int_orders_enriched"} / '
                                             'model_row_count{model="stg_shop__orders"}', 0.03),
    _demo_watch("kpi", "kpi", 0.5, asset=f"exposure.{DBT_PROJECT_NAME}.revenue_dashboard"),
)


class DemoMetricsConfig(_Strict):
    """The demo platform's metric store (SQLite)."""

    kind: Literal["demo"] = "demo"
    path: Path | None = Field(None, description="The demo platform's metrics SQLite file.")
    watches: list[MetricWatch] | None = Field(
        None, description="What to judge; default the demo platform's row counts, ratios, KPIs.")

    _unique = field_validator("watches")(_unique_watches)


class PrometheusMetricsConfig(_Strict):
    """A Prometheus server, read through its HTTP API."""

    kind: Literal["prometheus"]
    url: str = Field(description="Base URL of the Prometheus HTTP API, e.g. http://prom:9090.")
    watches: list[MetricWatch] = Field(default_factory=list, description="What to judge.")
    bearer_token_env: str | None = Field(
        None, description="Environment variable holding a bearer token to send.")
    username_env: str | None = Field(
        None, description="Environment variable holding the basic-auth user name.")
    password_env: str | None = Field(
        None, description="Environment variable holding the basic-auth password.")
    timeout_seconds: float = Field(30.0, gt=0, description="Timeout of one HTTP request.")

    _unique = field_validator("watches")(_unique_watches)

    @model_validator(mode="after")
    def _one_auth(self) -> PrometheusMetricsConfig:
        if (self.username_env is None) != (self.password_env is None):
            raise ValueError("username_env and password_env together, or neither")
        if self.bearer_token_env and self.username_env:
            raise ValueError("a bearer token or basic auth, not both")
        return self


def _metrics_kind(value: Any) -> str:
    """`kind` picks the backend; left out, it is the demo store (its default)."""
    kind = value.get("kind", "demo") if isinstance(value, dict) else getattr(value, "kind", None)
    return str(kind)


MetricsConfig = Annotated[
    Annotated[DemoMetricsConfig, Tag("demo")] | Annotated[PrometheusMetricsConfig,
                                                          Tag("prometheus")],
    Discriminator(_metrics_kind),
]


class AirflowConfig(_Strict):
    """DAG runs and task tries: an Airflow 3 API server, or the demo platform's run records."""

    url: str | None = Field(
        None, description="Base URL of the Airflow 3 API server, e.g. http://airflow:8080; "
        "none: the demo platform's run records."
    )
    username: str | None = Field(
        None, description="User that logs in at `/auth/token`; its password is AIRFLOW_PASSWORD."
    )
    dag_ids: list[str] | None = Field(None, description="DAGs to watch; default every DAG.")
    lookback_hours: float = Field(24, gt=0, description="How far back the first poll reads.")
    timeout_seconds: float = Field(30, gt=0, description="Timeout of one HTTP request.")
    verify_tls: bool = Field(True, description="Check the server's TLS certificate.")
    runs_db: Path | None = Field(
        None, description="Without `url`: the run records (SQLite) to read; default the demo "
        "platform's."
    )

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str | None) -> str | None:
        if url is not None and not re.match(r"^https?://[^/]+", url):
            raise ValueError("an http(s) URL such as http://airflow:8080")
        return url


class TableMonitorConfig(_Strict):
    """One table to watch (`sources.tables.monitors`); a field left out is derived (see `auto`)."""

    table: str = Field(description="`schema.table` (or `database.schema.table`); quote a part "
                                   "holding dots or spaces: `raw.\"odd name\"`.")
    timestamp_column: str | None = Field(
        None, description="When rows arrived: freshness is the age of its maximum.")
    partition_column: str | None = Field(
        None, description="Date or partition column: volume, null rates and distributions are "
                          "also computed over its latest value; default the timestamp's day.")
    key_columns: list[str] | None = Field(
        None, description="Columns that must be unique; default those with dbt unique tests.")
    null_columns: list[str] | None = Field(
        None, description="Columns whose null rate is watched; default dbt not_null columns "
                          "and relationships foreign keys.")
    numeric_columns: list[str] | None = Field(
        None, description="Columns whose distribution is watched; default the table's numeric "
                          "columns that are not keys (up to `max_numeric_columns`).")
    max_age: Duration | None = Field(
        None, description="Freshness limit, e.g. `18h`; default the dbt source's error_after.")
    max_null_rate: float | None = Field(
        None, ge=0, le=1, description="Null rate above which a column fires whatever its history.")


class TablesConfig(_Strict):
    """Warehouse table monitors: volume, freshness, null rate, uniqueness, schema, distribution."""

    auto: bool = Field(True, description="Watch every dbt model and source of the manifest, with "
                                         "keys, not-null columns and freshness from its tests.")
    monitors: list[TableMonitorConfig] = Field(
        default_factory=list, description="Tables to watch explicitly; their fields override "
                                          "what `auto` derives for the same table.")
    include: list[str] = Field(
        default_factory=lambda: ["*"], description="Globs over `schema.table`, dbt name or unique "
                                                   "id; which auto-derived tables to watch.")
    exclude: list[str] = Field(default_factory=list, description="Globs of tables not to watch.")
    sensitivity: BaselineConfig = Field(
        default_factory=BaselineConfig, description="How far a statistic must move to fire.")
    max_tables_per_poll: int = Field(
        50, ge=1, description="Tables checked per poll; the least recently checked go first.")
    resample_after: Duration = Field(
        timedelta(days=1), description="Take a new point of an unchanged table after this long.")
    timestamp_column_names: list[str] = Field(
        default_factory=lambda: ["_loaded_at", "_etl_loaded_at", "loaded_at"],
        description="Auto: a column with one of these names is a table's timestamp column.")
    partition_column_names: list[str] = Field(
        default_factory=lambda: ["_partition_date", "partition_date", "ds", "dt"],
        description="Auto: a column with one of these names is a table's partition column.")
    null_rate_min_delta: float = Field(
        0.02, ge=0, le=1, description="Smallest move of a null rate (0.02 = 2 points) that fires.")
    max_numeric_columns: int = Field(
        8, ge=0, description="Auto: numeric columns per table whose distribution is watched.")
    min_rows: int = Field(
        100, ge=1, description="Fewest rows (of the latest period) for null rates and "
                               "distributions to be judged: over fewer, they are noise.")
    sample_limit: int = Field(
        5, ge=0, le=100, description="Duplicated key values quoted in a signal; 0: none.")
    backfill_periods: int = Field(
        28, ge=0, le=400, description="On a table's first sampling, its latest partitions (or "
                                      "timestamp days) before the newest one read as history, in "
                                      "one grouped query, so the first poll can judge; 0: learn "
                                      "from polls only.")
    count_min_change_any_day: float | None = Field(
        0.4, ge=0, description="Row counts' `sensitivity.min_change_any_day`: the smallest "
                               "relative change that counts while a count's baseline mixes "
                               "weekdays (a weekend surge is tens of percent); None: "
                               "`sensitivity.min_change`.")


class SourcesConfig(_Strict):
    """What Sleuth watches. Anything left out points at the bundled demo platform."""

    dbt: DbtConfig = DbtConfig()
    warehouse: WarehouseConfig = WarehouseConfig()
    git: GitConfig = GitConfig()
    logs: list[LogSourceConfig] | None = Field(
        None, description="Log sources; default the demo platform's Airflow task logs."
    )
    metrics: MetricsConfig = DemoMetricsConfig()
    airflow: AirflowConfig = AirflowConfig()
    tables: TablesConfig = TablesConfig()
