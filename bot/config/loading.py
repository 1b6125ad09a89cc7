"""Reading the configuration: find the file, interpolate `${VAR}`, refuse literal
secrets, validate, and say every problem with its file and line; `sleuth config show`'s
masked view."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError
from sqlalchemy.engine import make_url

from bot.config.base import _ENV_REF, CONFIG_ENV, DEFAULT_FILE, HOME_ENV, SECRET_ENV
from bot.config.settings import Secrets, Settings
from bot.config.sources import GitConfig
from bot.errors import SleuthError


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
