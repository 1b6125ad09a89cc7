"""Sleuth's configuration: one YAML file validated by pydantic, secrets from the environment.

Where the file is: `--config`, else `SLEUTH_CONFIG`, else `./sleuth.yaml` if present, else none
at all, and the embedded defaults run against the bundled demo platform. String values may
use `${VAR}` to take a value from the environment (that is how a password reaches a URL);
a literal password in the file is refused.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from sqlalchemy.engine import make_url

from bot.demo.paths import PlatformPaths
from bot.errors import SleuthError

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


class DemoMetricsConfig(_Strict):
    kind: Literal["demo"] = "demo"
    path: Path | None = Field(None, description="The demo platform's metrics SQLite file.")


class PrometheusMetricsConfig(_Strict):
    kind: Literal["prometheus"]
    url: str = Field(description="Base URL of the Prometheus HTTP API, e.g. http://prom:9090.")


MetricsConfig = Annotated[
    DemoMetricsConfig | PrometheusMetricsConfig, Field(discriminator="kind")
]


class SourcesConfig(_Strict):
    """What Sleuth watches. Anything left out points at the bundled demo platform."""

    dbt: DbtConfig = DbtConfig()
    warehouse: WarehouseConfig = WarehouseConfig()
    git: GitConfig = GitConfig()
    logs: list[LogSourceConfig] | None = Field(
        None, description="Log sources; default the demo platform's Airflow task logs."
    )
    metrics: MetricsConfig = DemoMetricsConfig()


class DemoConfig(_Strict):
    """The bundled demo data platform."""

    seed: int = Field(7, description="Seed of the raw-data generator: same seed, same data.")
    days: int = Field(7, ge=1, le=60, description="Healthy days run before a scenario's fault.")
    scenario: str = Field(
        "cascade", description="Scenario `sleuth demo run` and `make demo` inject by default."
    )


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
        )
        metrics = src.metrics
        if isinstance(metrics, DemoMetricsConfig) and metrics.path is None:
            metrics = DemoMetricsConfig(path=demo.metrics_db)
        logs = src.logs
        if logs is None:
            logs = [LogSourceConfig(name="airflow", paths=[f"{demo.logs}/**/*.log"])]
        sources = SourcesConfig(
            dbt=dbt,
            warehouse=WarehouseConfig(url=src.warehouse.url or f"duckdb:///{demo.warehouse}"),
            git=GitConfig(repo=src.git.repo or demo.repo),
            logs=logs,
            metrics=metrics,
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
                                          ("project_dir", "profiles_dir", "artifacts_dir")}),
        "git": GitConfig(repo=fix(src.git.repo)),
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
