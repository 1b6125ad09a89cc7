"""Reading dbt's JSON artifacts: one error type, field paths in every message, schema versions.

Every reader in `bot.sources` goes through `read_artifact`, so a missing file, a file dbt is
still writing (truncated JSON) and a file that does not match its schema all raise
`ArtifactError` with the same shape of message:

    run_results.json: results.3.status: found 'exploded', expected one of success, error, …

Artifacts carry their schema in `metadata.dbt_schema_version`
(`https://schemas.getdbt.com/dbt/run-results/v6.json`). A version Sleuth does not know is
read anyway — whatever fits the models — with one `ArtifactSchemaWarning` per file name and
version; entries of its collections (results, nodes…) that do not fit are left out.
"""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Collection, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, ValidationError
from pydantic_core import ErrorDetails, PydanticCustomError

from bot.errors import SleuthError

# Versions whose fields the models were written against (dbt 1.6 to 1.11).
KNOWN_VERSIONS: dict[str, frozenset[int]] = {
    "run-results": frozenset({4, 5, 6}),   # v4 dbt 1.0-1.6, v5 dbt 1.7, v6 dbt 1.8+
    "manifest": frozenset({10, 11, 12}),   # v10 dbt 1.6, v11 dbt 1.7, v12 dbt 1.8+
    "sources": frozenset({3}),             # dbt 1.0+
}
_SCHEMA_URL = re.compile(r"/dbt/(?P<kind>[a-z-]+)/v(?P<version>\d+)(?:\.json)?/?$")
# What `json_path_at` needs to follow the structure: strings (maybe cut short) and punctuation.
_JSON_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*(?:"|\\?\Z)|[{}\[\],:]')

M = TypeVar("M", bound=BaseModel)


class ArtifactError(SleuthError):
    """A dbt artifact is missing, unreadable, or not what its schema says.

    `file` is the artifact's name, `where` the field path inside it (None when the problem is
    the whole file), `path` the file on disk.
    """

    def __init__(self, file: str, where: str | None, problem: str, *, path: Path | None = None):
        self.file, self.where, self.problem, self.path = file, where, problem, path
        super().__init__(f"{file}: {where}: {problem}" if where else f"{file}: {problem}")


class ArtifactSchemaWarning(UserWarning):
    """An artifact's schema version is not one Sleuth knows; it was read as far as it fits."""


class Artifact(BaseModel):
    """Base of every artifact model: dbt adds fields with each release, so extras are ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


# ------------------------------------------------------------------ field types


def _utc(value: datetime) -> datetime:
    # dbt writes UTC; some versions leave the zone off.
    return value if value.tzinfo else value.replace(tzinfo=UTC)


UtcDatetime = Annotated[datetime, AfterValidator(_utc)]


def one_of(values: Sequence[str]) -> BeforeValidator:
    """A validator for a closed set of strings whose message lists the choices plainly."""

    def check(value: object) -> object:
        if value not in values:
            raise PydanticCustomError("one_of", "found {found}, expected one of {expected}",
                                      {"found": shown(value), "expected": ", ".join(values)})
        return value

    return BeforeValidator(check)


def _none_if_blank(value: object) -> object:
    # dbt's own upgrade of old run_results fills missing strings with "": mean "not known".
    return None if value == "" else value


OptionalText = Annotated[str | None, BeforeValidator(_none_if_blank)]


# ------------------------------------------------------------------ reading


def read_artifact(path: Path, model: type[M], *, kind: str,
                  collections: Collection[str] = ()) -> M:
    """Load `path` and validate it as `model`, an artifact of schema `kind` ('run-results'…).

    `collections` name the top-level lists or mappings whose entries may be left out when a
    file of an unknown schema version has entries that do not fit.
    """
    data = load_json(path)
    version = schema_version(path, data, kind)
    lenient = version not in KNOWN_VERSIONS[kind]
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        if not lenient:
            raise validation_error(path, exc) from None
        return _read_what_fits(path, model, data, exc, collections)


def load_json(path: Path) -> dict[str, Any]:
    """The file's JSON object; `ArtifactError` if it is missing, cut short or not an object."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ArtifactError(path.name, None, f"file not found: {path}", path=path) from None
    except OSError as exc:
        raise ArtifactError(path.name, None, f"cannot read {path}: {exc.strerror}",
                            path=path) from None
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ArtifactError(path.name, None, f"not UTF-8 text (byte {exc.start})",
                            path=path) from None
    except json.JSONDecodeError as exc:
        raise _json_error(path, exc) from None
    if not isinstance(data, dict):
        raise ArtifactError(path.name, None, f"found {shown(data)}, expected a JSON object",
                            path=path)
    return data


def _json_error(path: Path, exc: json.JSONDecodeError) -> ArtifactError:
    where = json_path_at(exc.doc, exc.pos) or None
    if not exc.doc.strip():
        return ArtifactError(path.name, None, "empty file (is dbt still writing it?)", path=path)
    # Python reports a cut-off string where it starts, everything else where the text ends.
    if exc.pos >= len(exc.doc.rstrip()) or exc.msg.startswith("Unterminated string"):
        problem = "truncated JSON: the file ends early (is dbt still writing it?)"
    else:
        problem = f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
    return ArtifactError(path.name, where, problem, path=path)


def schema_version(path: Path, data: dict[str, Any], kind: str) -> int:
    """The version in `metadata.dbt_schema_version`; warns once if Sleuth does not know it."""
    file = path.name
    metadata = data.get("metadata")
    url = metadata.get("dbt_schema_version") if isinstance(metadata, dict) else None
    if not isinstance(url, str):
        where = "metadata.dbt_schema_version" if isinstance(metadata, dict) else "metadata"
        problem = "missing" if url is None else f"found {shown(url)}, expected a schema URL"
        raise ArtifactError(file, where, f"{problem} (is this a dbt {kind} artifact?)", path=path)
    match = _SCHEMA_URL.search(url)
    if match is None or match["kind"] != kind:
        raise ArtifactError(file, "metadata.dbt_schema_version",
                            f"found {url!r}, expected a dbt {kind} schema", path=path)
    version = int(match["version"])
    if version not in KNOWN_VERSIONS[kind]:
        known = ", ".join(f"v{v}" for v in sorted(KNOWN_VERSIONS[kind]))
        # The default warnings filter shows a given message once per process: once per version.
        warnings.warn(ArtifactSchemaWarning(
            f"{file}: dbt {kind} schema v{version} is not one Sleuth knows ({known}); "
            "reading the fields that fit"), stacklevel=4)  # the caller of read_run_results…
    return version


def _read_what_fits(path: Path, model: type[M], data: dict[str, Any], exc: ValidationError,
                    collections: Collection[str]) -> M:
    errors = exc.errors()
    if not all(len(e["loc"]) >= 2 and e["loc"][0] in collections for e in errors):
        raise validation_error(path, exc) from None  # the envelope itself does not fit
    misfits = {(str(e["loc"][0]), e["loc"][1]) for e in errors}
    pruned = dict(data)
    for name in {name for name, _ in misfits}:
        drop = {key for field, key in misfits if field == name}
        entries = data[name]
        pruned[name] = ({k: v for k, v in entries.items() if k not in drop}
                        if isinstance(entries, dict)
                        else [v for i, v in enumerate(entries) if i not in drop])
    try:
        result = model.model_validate(pruned)
    except ValidationError as again:
        raise validation_error(path, again) from None
    warnings.warn(ArtifactSchemaWarning(
        f"{path.name}: left out {len(misfits)} entries that do not fit; first: "
        f"{validation_error(path, exc).where}"), stacklevel=4)
    return result


# ------------------------------------------------------------------ messages


def validation_error(path: Path, exc: ValidationError) -> ArtifactError:
    """The first problem pydantic found, as `file: field.path: found …, expected …`."""
    errors = exc.errors(include_url=False)
    first = errors[0]
    problem = describe(first)
    if len(errors) > 1:
        problem += f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
    return ArtifactError(path.name, format_path(first["loc"]) or None, problem, path=path)


def describe(error: ErrorDetails) -> str:
    if error["type"] == "missing":
        return "missing (required)"
    if error["type"] == "one_of":
        return error["msg"]
    expected = error["msg"].removeprefix("Input should be ").removeprefix("Value error, ")
    return f"found {shown(error['input'])}, expected {expected}"


def shown(value: object) -> str:
    """A value as a message quotes it: short, and in JSON's words."""
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "…"


def format_path(loc: Sequence[int | str]) -> str:
    """`results.3.status`; keys holding dots (dbt unique ids) are bracketed: nodes['model.p.x']."""
    out = ""
    for part in loc:
        if isinstance(part, str) and ("." in part or " " in part):
            out += f"[{part!r}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def json_path_at(text: str, pos: int) -> str:
    """The field path a JSON text was inside at `pos`: where a truncated file broke off."""
    frames: list[list[Any]] = []  # [opener, key or index]; key None between an object's fields
    last_string: str | None = None
    for token in _JSON_TOKEN.finditer(text, 0, pos):
        t = token.group()
        if t in "{[":
            frames.append([t, None if t == "{" else 0])
        elif t in "}]":
            if frames:
                frames.pop()
        elif t == ",":
            if frames:
                frames[-1][1] = frames[-1][1] + 1 if frames[-1][0] == "[" else None
        elif t == ":":
            if frames:
                frames[-1][1] = last_string
        else:
            last_string = t[1:-1] if t.endswith('"') and len(t) > 1 else None
    return format_path([key for _, key in frames if key is not None])
