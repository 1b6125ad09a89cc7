"""A table of texts and their vectors in LanceDB, searched by cosine similarity.

One directory (`<home>/vectors`) holds one LanceDB table per purpose (`open_issues`,
`memory`), created on the first write. A row: `id`, `vector`, `text`, `metadata` (a JSON
object, returned as given), and two typed columns a `where` filter can use: `status` and
`updated_at` (taken from the metadata's keys of the same name; `updated_at` defaults to
the time of the upsert).

The table's schema metadata records the embedder's name and dimension: vectors of two
embedders are not comparable, so opening a table with another embedder is refused, or,
with `rebuild=True`, every stored text is embedded again with the new one.

Search is exhaustive (LanceDB's flat scan, filter applied before the scan): exact, and a
few milliseconds at the thousands of rows an on-call team accumulates (`python -m bench
similarity` measures 5,000). An ANN index (IVF-PQ, `table.create_index`) pays off past
about 100,000 rows, LanceDB's own guidance, or when a search passes ~100 ms; below that
it loses recall for nothing.

Concurrency: LanceDB commits each write as a new table version, atomically, and readers
never see half a write; any number of readers in any process is fine, and they see new
versions at once (`read_consistency_interval=0`). Concurrent writers from several processes
can conflict on commit, so keep one writer per table (intake for `open_issues`, the
resolver for `memory`); within a process, one `VectorIndex` serialises its writes with a
lock. Every write adds a version and data files: `optimize()` compacts them and drops old
versions; it runs by itself every `OPTIMIZE_EVERY` writes.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import lancedb
import numpy as np
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

from bot.errors import SleuthError
from bot.vectors.embedders import Embedder, make_embedder

if TYPE_CHECKING:
    from bot.config import Settings

EMBEDDER_KEY = b"sleuth.embedder"
DIM_KEY = b"sleuth.dim"
FILTER_COLUMNS = ("id", "status")  # what `where` may name; values are strings
OPTIMIZE_EVERY = 200  # writes between automatic compactions
KEEP_VERSIONS = timedelta(minutes=1)  # a reader in another process may still be on one
_TABLE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


class Hit(BaseModel):
    """One search result: similarity is the cosine, clipped to 0..1 (1 = same direction)."""

    model_config = ConfigDict(frozen=True)

    id: str
    similarity: float = Field(ge=0.0, le=1.0)
    text: str
    metadata: dict[str, Any]


class Record(BaseModel):
    """One row to store."""

    id: str = Field(min_length=1)
    text: str
    metadata: dict[str, Any] = Field(default_factory=dict)


def vectors_dir(home: Path) -> Path:
    """Where the vector tables live under the data home."""
    return home / "vectors"


def open_index(settings: Settings, table: str, *, rebuild: bool = False) -> VectorIndex:
    """The index `table` under the settings' home, with the configured embedder."""
    return VectorIndex(vectors_dir(settings.home), table, make_embedder(settings.embeddings),
                       rebuild=rebuild)


class VectorIndex:
    """One LanceDB table of (id, text, metadata) rows with the embedder's vectors."""

    def __init__(self, directory: Path, table: str, embedder: Embedder, *, rebuild: bool = False):
        if not _TABLE_NAME.match(table):
            raise SleuthError(f"vector table name {table!r}: expected lowercase letters, "
                              "digits and underscores, starting with a letter")
        self.directory = directory
        self.name = table
        self.embedder = embedder
        self._lock = threading.Lock()
        self._writes = 0
        self._db = lancedb.connect(directory, read_consistency_interval=timedelta(0))
        self._table: Any = None
        self._open(rebuild)

    # ---------------------------------------------------------------------------- writes

    def upsert(self, id: str, text: str, metadata: Mapping[str, Any] | None = None) -> None:
        """Store a text under `id`, replacing the row of that id if there is one."""
        self.upsert_many([Record(id=id, text=text, metadata=dict(metadata or {}))])

    def upsert_many(self, records: Iterable[Record]) -> None:
        """Store many rows in one write (one embed batch, one table version)."""
        records = list({r.id: r for r in records}.values())  # the last of one id wins
        if not records:
            return
        vectors = self.embedder.embed([r.text for r in records])
        rows = pa.Table.from_pylist(
            [_row(r, v) for r, v in zip(records, vectors, strict=True)], schema=self._schema()
        )
        with self._lock:
            table = self._open() or self._create()
            (table.merge_insert("id").when_matched_update_all()
             .when_not_matched_insert_all().execute(rows))
            self._wrote()

    def delete(self, id: str) -> None:
        """Remove the row of `id`; no error if there is none."""
        with self._lock:
            if self._open() is not None:
                self._table.delete(f"id = {_sql_string(id)}")
                self._wrote()

    def optimize(self) -> None:
        """Compact data files and drop table versions older than `KEEP_VERSIONS`."""
        with self._lock:
            if self._open() is not None:
                self._table.optimize(cleanup_older_than=KEEP_VERSIONS)
                self._writes = 0

    # ----------------------------------------------------------------------------- reads

    def count(self) -> int:
        return 0 if self._open() is None else self._table.count_rows()

    def search(self, text: str, k: int = 5, where: Mapping[str, Any] | None = None,
               min_similarity: float = 0.0) -> list[Hit]:
        """The `k` rows most similar to `text`, best first, at least `min_similarity`.

        `where` keeps rows whose columns equal the given values: `{"status": "open"}`, or
        a list for any of several values: `{"status": ["open", "acked"]}`.
        """
        if self._open() is None or k <= 0:
            return []
        query = self.embedder.embed([text])[0]
        search = self._table.search(query).distance_type("cosine").limit(k)
        if where:
            search = search.where(_where_sql(where), prefilter=True)
        hits = []
        for row in search.select(["id", "text", "metadata", "_distance"]).to_list():
            similarity = _similarity(row["_distance"])
            if similarity >= min_similarity:
                hits.append(Hit(id=row["id"], similarity=similarity, text=row["text"],
                                metadata=json.loads(row["metadata"])))
        return hits

    # ------------------------------------------------------------------------- the table

    def _schema(self) -> pa.Schema:
        return pa.schema(
            [
                pa.field("id", pa.string(), nullable=False),
                pa.field("vector", pa.list_(pa.float32(), self.embedder.dim)),
                pa.field("text", pa.string()),
                pa.field("metadata", pa.string()),
                pa.field("status", pa.string()),
                pa.field("updated_at", pa.timestamp("us", tz="UTC")),
            ],
            metadata={EMBEDDER_KEY: self.embedder.name.encode(),
                      DIM_KEY: str(self.embedder.dim).encode()},
        )

    def _open(self, rebuild: bool = False) -> Any:
        """The table, checked against the embedder once; None until someone writes one
        (this instance or another, in any process)."""
        if self._table is None and self.name in self._db.table_names():
            self._table = self._checked(self._db.open_table(self.name), rebuild)
        return self._table

    def _checked(self, table: Any, rebuild: bool) -> Any:
        meta = table.schema.metadata or {}
        stored = (meta.get(EMBEDDER_KEY, b"?").decode(), meta.get(DIM_KEY, b"?").decode())
        if stored == (self.embedder.name, str(self.embedder.dim)):
            return table
        if not rebuild:
            raise SleuthError(
                f"vector table {self.name!r} in {self.directory} holds vectors of embedder "
                f"{stored[0]!r} ({stored[1]} dims), not of the configured {self.embedder.name!r} "
                f"({self.embedder.dim} dims): set embeddings back, or rebuild the table "
                "(VectorIndex(..., rebuild=True) embeds every stored text again)"
            )
        return self._reembed(table)

    def _create(self) -> Any:
        # `exist_ok`: another process may have created it since; then it is checked too.
        table = self._db.create_table(self.name, schema=self._schema(), exist_ok=True)
        self._table = self._checked(table, rebuild=False)
        return self._table

    def _reembed(self, old: Any) -> Any:
        """Embed every stored text again with this embedder into a fresh table."""
        rows = old.to_arrow().select(["id", "text", "metadata", "status", "updated_at"])
        rows = rows.to_pylist()
        self._db.drop_table(self.name)
        table = self._db.create_table(self.name, schema=self._schema())
        if rows:
            vectors = self.embedder.embed([r["text"] for r in rows])
            data = [{**r, "vector": v} for r, v in zip(rows, vectors, strict=True)]
            table.add(pa.Table.from_pylist(data, schema=self._schema()))
        return table

    def _wrote(self) -> None:
        self._writes += 1
        if self._writes >= OPTIMIZE_EVERY:
            self._table.optimize(cleanup_older_than=KEEP_VERSIONS)
            self._writes = 0


def _row(record: Record, vector: np.ndarray) -> dict[str, Any]:
    meta = record.metadata
    status = meta.get("status")
    return {
        "id": record.id,
        "vector": vector,
        "text": record.text,
        "metadata": json.dumps(meta, default=str, sort_keys=True),
        "status": None if status is None else str(status),
        "updated_at": _timestamp(meta.get("updated_at")),
    }


def _timestamp(value: Any) -> datetime:
    if value is None:
        return datetime.now(UTC)
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if not isinstance(value, datetime):
        raise SleuthError(f"metadata updated_at: found {value!r}, expected a datetime or ISO text")
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _similarity(distance: float) -> float:
    """LanceDB's cosine distance is 1 - cos; clip to 0..1 (rounding, opposite vectors)."""
    if distance != distance:  # NaN: a zero vector, which no embedder here produces
        return 0.0
    return min(1.0, max(0.0, 1.0 - float(distance)))


def _where_sql(where: Mapping[str, Any]) -> str:
    clauses = []
    for column, value in where.items():
        if column not in FILTER_COLUMNS:
            raise SleuthError(f"vector search where: found column {column!r}, expected one of "
                              f"{', '.join(FILTER_COLUMNS)}")
        if isinstance(value, list | tuple | set | frozenset):
            if not value:
                return "false"
            items = ", ".join(_sql_string(str(v)) for v in sorted(map(str, value)))
            clauses.append(f"{column} IN ({items})")
        else:
            clauses.append(f"{column} = {_sql_string(str(value))}")
    return " AND ".join(clauses)


def _sql_string(value: str) -> str:
    """A SQL string literal: the only quoting DataFusion needs is doubling `'`."""
    return "'" + value.replace("'", "''") + "'"
