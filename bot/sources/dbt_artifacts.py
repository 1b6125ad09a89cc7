"""The dbt artifacts source: failed models, failed or warned tests and stale sources as signals.

Where it reads. `artifacts_dir` is a dbt `target/` folder, holding the artifacts of the latest
invocation only. `archive_dir`, if given, holds one folder per DAG run,
`<archive_dir>/<run_id>/{run_results,manifest,sources}.json`, as the demo platform (and many
deployments) keep them. Both may be given; an invocation found in both is read once, from the
archive, whose folder name tells which DAG run it belonged to: that name is the signals'
`run_id` (for target/ it is the dbt invocation id). Invocations are read in the order dbt
generated them.

What becomes a signal (other statuses do not):

- model_error: in run_results.json, a model, seed, snapshot or hook that ended `error`,
  `runtime error` or `partial success` (a microbatch model with failed batches);
- test_failed / test_warned: a test or unit test that ended `fail` or `error` / `warn`;
- source_stale: in sources.json, a source whose freshness is `warn`, `error` or
  `runtime error`. Source results in run_results.json are left to sources.json.

Skipped nodes are not signals: they are consequences. Each failure that stops the build
(a model error, a failed test) lists the skipped nodes downstream of it in
`detail["skipped_descendants"]` (and their number in `skipped_count`), so the card can say
"and 31 nodes downstream were skipped". This needs the manifest next to the results; without
one these keys are left out.

The asset of a test signal is the node the test is about (its model, or source), not the test:
issues group and route by what is broken, and a not_null and a unique test failing on the same
model are one problem. The test itself is in the detail: `test_id`, `test_name` (not_null…),
`test_display`, `column`, `failures`. A test with no single subject keeps its own id as asset.

A freshness `runtime error` (the check itself could not run: table gone, column renamed) is a
source_stale signal too, with `detail["status"] == "runtime error"`: nobody knows the source is
fresh, and that is worth a look.

Polling is idempotent. Each signal's `dedup_key` is `dbt:<invocation_id>:<unique_id>`, so
reading the same artifacts twice yields the same keys. The caller keeps a `DbtCursor` (small,
JSON) of the invocations already read and passes it to the next `poll`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from bot.intake.signals import RawSignal, SignalKind
from bot.sources.base import as_cursor
from bot.sources.dbt_files import ArtifactError, UtcDatetime
from bot.sources.dbt_lineage import TEST_TYPES, Lineage, name_from_id
from bot.sources.dbt_results import (
    ArtifactMetadata,
    RunResult,
    RunResults,
    SourceFreshness,
    SourcesArtifact,
    read_run_results,
    read_sources,
)

log = logging.getLogger(__name__)

RUN_RESULTS = "run_results.json"
SOURCES = "sources.json"
MANIFEST = "manifest.json"
ResultsKind = Literal["run_results", "sources"]
_RESULT_FILES: tuple[tuple[ResultsKind, str], ...] = (("run_results", RUN_RESULTS),
                                                       ("sources", SOURCES))
_BUILD_ERRORS = frozenset({"error", "runtime error", "partial success"})
_TEST_KINDS: dict[str, SignalKind] = {"fail": "test_failed", "error": "test_failed",
                                      "runtime error": "test_failed", "warn": "test_warned"}
_MAX_CODE = 20_000  # compiled SQL kept in a signal; enough to read, small enough to store
_MAX_TITLE = 200


class DbtCursor(BaseModel):
    """What a `DbtArtifactsSource` has already read; the caller persists it between polls.

    To skip an archive's history on first start, pass `DbtCursor(floor=<now>)`.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    seen: dict[str, UtcDatetime] = Field(
        default_factory=dict,
        description="Invocations already turned into signals: invocation id -> generated_at.")
    floor: UtcDatetime | None = Field(
        None, description="Artifacts generated at or before this count as read: invocations "
                          "forgotten from `seen` to keep the cursor small, or a start point.")
    keep: int = Field(256, ge=1, description="How many invocations `seen` remembers.")

    def covers(self, key: str, generated_at: datetime) -> bool:
        return key in self.seen or (self.floor is not None and generated_at <= self.floor)

    def with_seen(self, new: dict[str, datetime]) -> DbtCursor:
        """This cursor plus `new`, the oldest forgotten (below `floor`) past `keep` entries."""
        seen = sorted({**self.seen, **new}.items(), key=lambda kv: (kv[1], kv[0]))
        dropped, kept = seen[:-self.keep], seen[-self.keep:]
        floor = max([*([self.floor] if self.floor else []), *(at for _, at in dropped)],
                    default=None)
        return self.model_copy(update={"seen": dict(kept), "floor": floor})


@dataclass(frozen=True)
class _Found:
    """One results file of one dbt invocation, located and dated."""

    path: Path
    kind: ResultsKind
    run_id: str | None  # the archive folder's name: the DAG run the invocation was part of
    key: str            # the invocation id, or a stand-in if dbt wrote none
    generated_at: datetime


@dataclass(frozen=True)
class _Invocation:
    """What every signal of one results file shares."""

    found: _Found
    metadata: ArtifactMetadata
    command: str | None
    lineage: Lineage | None
    skipped: frozenset[str]

    @property
    def run_id(self) -> str:
        return self.found.run_id or self.metadata.invocation_id or self.found.key


Stamp = tuple[int, int]  # (mtime_ns, size): a file that kept both has not changed


class DbtArtifactsSource:
    """Turns dbt's artifacts into `RawSignal`s; see the module docstring for what and how."""

    def __init__(self, name: str, artifacts_dir: Path, archive_dir: Path | None = None) -> None:
        self.name = name
        self.artifacts_dir = Path(artifacts_dir)
        self.archive_dir = Path(archive_dir) if archive_dir is not None else None
        # Caches keyed by file stamp, so a poll re-reads only files that changed.
        self._headers: dict[Path, tuple[Stamp, tuple[str, datetime]]] = {}
        self._lineages: dict[Path, tuple[Stamp, Lineage]] = {}
        self._reported: set[tuple[Path, Stamp]] = set()

    # ------------------------------------------------------------ public

    def poll(
        self, cursor: DbtCursor | Mapping[str, Any] | None = None
    ) -> tuple[list[RawSignal], DbtCursor]:
        """Signals of every invocation the cursor has not seen, oldest first, and the new cursor.

        A file that cannot be read (dbt may be writing it) is skipped with a warning and read
        again at the next poll; it never fails the whole poll.
        """
        cursor = as_cursor(DbtCursor, cursor)
        signals: list[RawSignal] = []
        seen: dict[str, datetime] = {}
        for found in self._locate():
            if cursor.covers(found.key, found.generated_at):
                continue
            try:
                signals += self._signals(found)
            except ArtifactError as exc:
                self._report(found.path, exc)
                continue
            seen[found.key] = found.generated_at
        return signals, cursor.with_seen(seen)

    def check(self) -> list[str]:
        """What stops this source from working, one line each; empty when it is ready."""
        folders = [(self.artifacts_dir, "artifacts folder")]
        if self.archive_dir is not None:
            folders.append((self.archive_dir, "archive folder"))
        missing = [f"dbt {what} {folder} does not exist" for folder, what in folders
                   if not folder.is_dir()]
        if missing:
            return missing
        latest = [f for f in (self.artifacts_dir, self._newest_run()) if f is not None]
        if not any((f / name).is_file() for f in latest for _, name in _RESULT_FILES):
            return [self._nothing_yet()]
        return [p for folder in latest for p in _folder_problems(folder)]

    def lineage(self) -> Lineage | None:
        """The lineage of the newest manifest (target/ or archive); None if there is none yet."""
        manifests = [f / MANIFEST for f in (self.artifacts_dir, self._newest_run())
                     if f is not None and (f / MANIFEST).is_file()]
        if not manifests:
            return None
        newest = max(manifests, key=lambda p: p.stat().st_mtime_ns)
        return self._lineage_of(newest)

    # ------------------------------------------------------------ finding invocations

    def _locate(self) -> list[_Found]:
        """Every readable results file, each invocation once, in the order dbt wrote them."""
        folders: list[tuple[Path, str | None]] = [(d, d.name) for d in self._runs()]
        folders.append((self.artifacts_dir, None))  # after the archive: its copy knows the run
        by_key: dict[str, _Found] = {}
        for folder, run_id in folders:
            for kind, name in _RESULT_FILES:
                found = self._found(folder / name, kind, run_id)
                if found is not None:
                    by_key.setdefault(found.key, found)
        return sorted(by_key.values(), key=lambda f: (f.generated_at, str(f.path)))

    def _runs(self) -> list[Path]:
        if self.archive_dir is None or not self.archive_dir.is_dir():
            return []
        return sorted(d for d in self.archive_dir.iterdir() if d.is_dir())

    def _newest_run(self) -> Path | None:
        runs = [d for d in self._runs() if any((d / n).is_file() for _, n in _RESULT_FILES)]
        return max(runs, key=lambda d: d.stat().st_mtime_ns, default=None)

    def _found(self, path: Path, kind: ResultsKind, run_id: str | None) -> _Found | None:
        stamp = _stamp(path)
        if stamp is None:
            return None
        cached = self._headers.get(path)
        if cached is None or cached[0] != stamp:
            try:
                metadata = _read(path, kind).metadata
            except ArtifactError as exc:
                self._report(path, exc)
                return None
            generated = metadata.generated_at or datetime.fromtimestamp(stamp[0] / 1e9, UTC)
            key = metadata.invocation_id or f"{kind}@{generated.isoformat()}"
            cached = (stamp, (key, generated))
            self._headers[path] = cached
        key, generated = cached[1]
        return _Found(path, kind, run_id, key, generated)

    def _lineage_of(self, manifest: Path) -> Lineage | None:
        stamp = _stamp(manifest)
        if stamp is None:
            return None
        cached = self._lineages.get(manifest)
        if cached is None or cached[0] != stamp:
            if len(self._lineages) >= 8:  # manifests are big: keep the few in use
                self._lineages.clear()
            cached = (stamp, Lineage.read(manifest))
            self._lineages[manifest] = cached
        return cached[1]

    def _lineage_near(self, found: _Found) -> Lineage | None:
        """The manifest written beside the results; without it signals carry less detail."""
        try:
            return self._lineage_of(found.path.parent / MANIFEST)
        except ArtifactError as exc:
            self._report(found.path.parent / MANIFEST, exc)
            return None

    def _report(self, path: Path, exc: ArtifactError) -> None:
        stamp = _stamp(path) or (0, 0)
        if (path, stamp) not in self._reported:  # once per version of the file, not per poll
            self._reported.add((path, stamp))
            log.warning("dbt source %s: cannot use %s: %s", self.name, path, exc)

    def _nothing_yet(self) -> str:
        where = str(self.artifacts_dir)
        if self.archive_dir is not None:
            where += f" or {self.archive_dir}"
        hint = ""
        if any(self.artifacts_dir.glob(f"*/{RUN_RESULTS}")):
            hint = f"; {self.artifacts_dir} holds run folders: pass it as the archive folder"
        return f"no dbt artifacts yet in {where}: no {RUN_RESULTS} or {SOURCES}{hint}"

    # ------------------------------------------------------------ signals

    def _signals(self, found: _Found) -> list[RawSignal]:
        if found.kind == "sources":
            return self._freshness_signals(found, read_sources(found.path))
        return self._run_signals(found, read_run_results(found.path))

    def _run_signals(self, found: _Found, results: RunResults) -> list[RawSignal]:
        problems = [(r, kind) for r in results.results if (kind := _kind_of(r)) is not None]
        if not problems:
            return []  # a healthy run: no need to read its manifest
        skipped = frozenset(r.unique_id for r in results.results if r.status == "skipped")
        inv = _Invocation(found, results.metadata, results.command, self._lineage_near(found),
                          skipped)
        return [self._result_signal(kind, result, inv) for result, kind in problems]

    def _result_signal(self, kind: SignalKind, result: RunResult, inv: _Invocation) -> RawSignal:
        uid = result.unique_id
        node = inv.lineage.node(uid) if inv.lineage else None
        detail: dict[str, Any] = {
            **_common(inv), "unique_id": uid, "status": result.status,
            "message": _clip(result.message, _MAX_CODE), "execution_time": result.execution_time,
            "original_file_path": node.original_file_path if node else None,
            "compiled_path": node.compiled_path if node else None,
            "compiled_code": _clip(result.compiled_code, _MAX_CODE),
        }
        if kind == "model_error":
            asset, title = uid, _model_title(result, _display(inv, uid))
            detail["relation"] = result.relation_name or (node.relation_name if node else None)
            detail.update(_batches(result))
        else:
            asset, title = self._test_facts(kind, result, inv, detail)
        if kind != "test_warned":  # warnings do not stop the build
            detail.update(_skipped_below(inv, asset if kind == "test_failed" else uid))
        detail["slack_channel"] = inv.lineage.owning_channel(asset) if inv.lineage else None
        return self._signal(kind, asset, title, result.finished_at, uid, inv, detail)

    def _test_facts(self, kind: SignalKind, result: RunResult, inv: _Invocation,
                    detail: dict[str, Any]) -> tuple[str, str]:
        """Fill the test's part of `detail`; return the asset (what it tests) and the title."""
        uid, lineage = result.unique_id, inv.lineage
        node = lineage.node(uid) if lineage else None
        tested = lineage.tested_node(uid) if lineage else None
        meta = node.test_metadata if node else None
        display = _display(inv, uid)
        detail.update(
            test_id=uid, test_name=meta.full_name if meta else (node.name if node else display),
            test_display=display, column=node.column_name if node else None,
            failures=result.failures, severity=node.config.severity if node else None,
            tested=tested,
            tested_relation=_relation(lineage, tested) if lineage and tested else None)
        return tested or uid, _test_title(kind, result, display)

    def _freshness_signals(self, found: _Found, artifact: SourcesArtifact) -> list[RawSignal]:
        stale = [r for r in artifact.results if r.status != "pass"]
        if not stale:
            return []
        inv = _Invocation(found, artifact.metadata, "source freshness",
                          self._lineage_near(found), frozenset())
        return [self._freshness_signal(r, inv) for r in stale]

    def _freshness_signal(self, result: SourceFreshness, inv: _Invocation) -> RawSignal:
        uid, criteria = result.unique_id, result.criteria
        detail: dict[str, Any] = {
            **_common(inv), "unique_id": uid, "status": result.status,
            "max_loaded_at": _iso(result.max_loaded_at),
            "snapshotted_at": _iso(result.snapshotted_at),
            "max_loaded_at_time_ago_in_s": result.max_loaded_at_time_ago_in_s,
            "warn_after": str(criteria.warn_after) if criteria and criteria.warn_after else None,
            "error_after": str(criteria.error_after) if criteria and criteria.error_after
            else None,
            "filter": criteria.filter if criteria else None,
            "error": result.error,
            "relation": _relation(inv.lineage, uid) if inv.lineage else None,
            "slack_channel": inv.lineage.owning_channel(uid) if inv.lineage else None,
        }
        title = _freshness_title(result, _display(inv, uid))
        return self._signal("source_stale", uid, title, result.snapshotted_at, uid, inv, detail)

    def _signal(self, kind: SignalKind, asset: str, title: str, at: datetime | None,
                unique_id: str, inv: _Invocation, detail: dict[str, Any]) -> RawSignal:
        return RawSignal(
            source=self.name, kind=kind, asset=asset, title=_clip(title, _MAX_TITLE) or kind,
            observed_at=at or inv.metadata.generated_at or inv.found.generated_at,
            dedup_key=f"dbt:{inv.found.key}:{unique_id}", run_id=inv.run_id, detail=detail)


# ---------------------------------------------------------------- reading helpers


def _read(path: Path, kind: ResultsKind) -> RunResults | SourcesArtifact:
    return read_sources(path) if kind == "sources" else read_run_results(path)


def _stamp(path: Path) -> Stamp | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return (stat.st_mtime_ns, stat.st_size)


def _folder_problems(folder: Path) -> list[str]:
    """Problems with the artifacts in one folder: unreadable files, a missing manifest."""
    problems = []
    for _, name in (*_RESULT_FILES, ("manifest", MANIFEST)):
        path = folder / name
        if not path.is_file():
            continue
        try:
            if name == MANIFEST:
                Lineage.read(path)
            else:
                _read(path, _kind_named(name))
        except ArtifactError as exc:
            problems.append(f"{exc} ({path})")
    if (folder / RUN_RESULTS).is_file() and not (folder / MANIFEST).is_file():
        problems.append(f"{folder}: {RUN_RESULTS} without {MANIFEST}: failed tests cannot be "
                        "tied to their models, nor skipped nodes to their cause")
    return problems


def _kind_named(name: str) -> ResultsKind:
    return "sources" if name == SOURCES else "run_results"


# ---------------------------------------------------------------- signal helpers


def _kind_of(result: RunResult) -> SignalKind | None:
    resource = result.unique_id.split(".", 1)[0]
    if resource == "source":
        return None  # freshness comes from sources.json, which says more
    if resource in TEST_TYPES:
        return _TEST_KINDS.get(result.status)
    return "model_error" if result.status in _BUILD_ERRORS else None


def _common(inv: _Invocation) -> dict[str, Any]:
    return {"invocation_id": inv.metadata.invocation_id, "dbt_command": inv.command,
            "dbt_version": inv.metadata.dbt_version, "artifact": str(inv.found.path)}


def _display(inv: _Invocation, unique_id: str) -> str:
    return inv.lineage.display_name(unique_id) if inv.lineage else name_from_id(unique_id)


def _relation(lineage: Lineage, unique_id: str) -> str | None:
    node = lineage.node(unique_id)
    return node.relation_name if node else None


def _skipped_below(inv: _Invocation, unique_id: str) -> dict[str, Any]:
    """The skipped nodes downstream of a failure: what it stopped from being built or tested."""
    if inv.lineage is None:
        return {}
    below = [n for n in inv.lineage.downstream(unique_id) if n in inv.skipped]
    return {"skipped_descendants": below, "skipped_count": len(below)}


def _batches(result: RunResult) -> dict[str, Any]:
    batches = result.batch_results
    if batches is None:
        return {}
    return {"batches_failed": [list(b) for b in batches.failed],
            "batches_succeeded": len(batches.successful)}


def _model_title(result: RunResult, name: str) -> str:
    resource = result.unique_id.split(".", 1)[0]
    if result.status == "partial success" and result.batch_results is not None:
        failed = len(result.batch_results.failed)
        total = failed + len(result.batch_results.successful)
        return f"dbt {resource} {name} partly failed: {failed} of {total} batches"
    return f"dbt {resource} {name} failed: {headline(result.message)}"


def _test_title(kind: SignalKind, result: RunResult, name: str) -> str:
    if result.status in ("error", "runtime error"):
        return f"dbt test {name} could not run: {headline(result.message)}"
    verb = "warned" if kind == "test_warned" else "failed"
    if result.failures is None:
        return f"dbt test {name} {verb}: {headline(result.message)}"
    rows = f"{result.failures:,} failing row{'' if result.failures == 1 else 's'}"
    return f"dbt test {name} {verb}: {rows}"


def _freshness_title(result: SourceFreshness, name: str) -> str:
    if result.status == "runtime error":
        return f"Freshness check of source {name} failed: {headline(result.error)}"
    age = _age(result.max_loaded_at_time_ago_in_s)
    criteria = result.criteria
    limit = (criteria.error_after if result.status == "error" else criteria.warn_after) \
        if criteria else None
    over = f", {result.status} after {limit}" if limit and limit.count else ""
    return f"Source {name} is stale: last loaded {age} ago ({result.status}{over})"


def headline(message: str | None) -> str:
    """The line of a dbt message that says what went wrong.

    dbt prefixes errors with where they happened (`Runtime Error in model x (path)`); the
    database's own words are on the next line.
    """
    lines = [ln.strip() for ln in (message or "").splitlines() if ln.strip()]
    if not lines:
        return "no message"
    if len(lines) > 1 and " in " in lines[0] and lines[0].split(" in ")[0].endswith("Error"):
        return lines[1]
    return lines[0]


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "an unknown time"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 72 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def _clip(text: str | None, limit: int) -> str | None:
    if text is None or len(text) <= limit:
        return text
    return text[:limit - 1] + "…"


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
