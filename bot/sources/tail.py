"""Follow the files a list of globs matches, from where the last poll stopped.

A `LogCursor` (plain JSON) remembers each file's identity (device and inode), how far it was
consumed (byte offset and line number) and a hash of its first bytes. With it, a restarted
process neither loses nor repeats a line, and each poll tells apart:

- growth: the new complete lines are read; a last line without its newline waits;
- rotation by rename: the old file, found again by its inode (under the globs, or in its
  folder), is read to its end, then the new file at the old path from byte 0;
- truncation (copytruncate), or a new file that took the old one's path and inode: the file
  is shorter than the offset or its first bytes changed, so it is read again from byte 0.
  A copy of the old content that the globs match continues where the old file was left;
- new files: read from byte 0, unless clearly binary (skipped, the reason reported once);
- deleted files: forgotten.

What lines mean is the consumer's business. The tailer hands it each file's new lines and
the consumer answers how far it consumed them; that position is what the cursor keeps. A
consumer may stop short (an event that may still grow) to see those lines again next poll.
"""

from __future__ import annotations

import glob
import hashlib
import os
import re
import stat
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import BinaryIO, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field

from bot.intake.logformats import TRUNCATION_MARKER

HEAD_BYTES = 1024  # enough to tell two logs apart: their first lines carry timestamps
_SKIP_CHUNK = 64 * 1024  # the rest of a cut line is read and dropped this much at a time
# C0 controls but tab, DEL and C1 controls (what invalid bytes never become: they turn
# into U+FFFD). NULs land here too: a preallocated or crashed log is full of them.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]+")
_INVALID_SHARE = 0.3  # random or encrypted bytes: most are not UTF-8; a Latin-1 log's few are
_MAGIC = (  # compressed rotations (`app.log.2.gz`) that a glob like `*.log*` picks up
    (b"\x1f\x8b", "gzip-compressed"),
    (b"\x28\xb5\x2f\xfd", "zstd-compressed"),
    (b"\xfd7zXZ\x00", "xz-compressed"),
    (b"PK\x03\x04", "a zip archive"),
    (b"\xff\xfe", "UTF-16 text, which is not supported"),
    (b"\xfe\xff", "UTF-16 text, which is not supported"),
)


class TailLimits(BaseModel):
    """Bounds that keep a poll's memory and time in check, whatever the files hold."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_line_bytes: int = Field(
        64 * 1024,
        ge=256,
        description="A longer line is cut here, with a marker; the rest is skipped in chunks, "
        "never held in memory whole.",
    )
    settle_seconds: float = Field(
        2.0,
        ge=0,
        description="A file unchanged for this long is taken as done being written for now, "
        "so its last event is complete. Until then that event waits: a traceback may be "
        "half written.",
    )
    max_bytes_per_poll: int = Field(
        256 * 1024 * 1024,
        ge=1,
        description="Once a poll has read this much, the files left over wait for the next "
        "poll (a file already started is read to its end).",
    )
    sniff_bytes: int = Field(
        8192, ge=512, description="How much of a new file is looked at to tell it is binary."
    )
    binary_nul_share: float = Field(
        0.1,
        gt=0,
        le=1,
        description="A first block with this share of NUL bytes is binary: the file is "
        "skipped. A few NULs in a text log are dropped from its lines instead.",
    )


class FileCursor(BaseModel):
    """Where one file was left."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: str = Field(description="Where the file is now.")
    label: str = Field(
        description="Where it was first seen: names it in signals and their dedup keys, "
        "so that a rename changes neither."
    )
    dev: int
    ino: int
    size: int = Field(0, description="Its size when last looked at.")
    mtime_ns: int = Field(0, description="Its modification time when last looked at.")
    offset: int = Field(0, ge=0, description="Every byte before this is consumed.")
    line: int = Field(1, ge=1, description="Number of the line that starts at `offset`.")
    head_len: int = Field(0, ge=0, le=HEAD_BYTES)
    head_hash: str = Field(
        "", description="Hash of the first `head_len` bytes: a changed head is a new file."
    )
    skipped: str | None = Field(None, description="Why the file is not read (binary…).")


class LogCursor(BaseModel):
    """Every followed file's position: JSON between polls and across restarts."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: Literal[1] = 1
    files: dict[str, FileCursor] = Field(default_factory=dict, description="By current path.")


class PollStats(BaseModel):
    """What one poll did: for progress, and for a person asking why nothing came out."""

    files: int = Field(0, description="Files followed after the poll.")
    files_read: int = 0
    new_files: int = 0
    rotated: int = Field(0, description="Files found renamed, followed by their inode.")
    truncated: int = Field(0, description="Files truncated or replaced in place: read from 0.")
    dropped: int = Field(0, description="Files gone from disk, forgotten.")
    deferred: int = Field(0, description="Files left for the next poll: the budget was spent.")
    lines: int = Field(0, description="Lines read (a held-back event's lines count each time).")
    bytes: int = 0
    events: int = Field(0, description="Events complete and decided on.")
    signals: int = 0
    skipped: dict[str, str] = Field(
        default_factory=dict, description="Files newly found binary, with why: reported once."
    )
    problems: list[str] = Field(
        default_factory=list, description="Files that could not be read this time; retried."
    )


@dataclass(slots=True)
class Line:
    """One line as read. Read-only by convention (built per line: no pydantic)."""

    offset: int  # where the line starts
    end: int  # where the next line starts
    number: int  # 1-based
    text: str  # decoded, control characters dropped, no newline; a cut line ends in the marker


class Position(NamedTuple):
    offset: int  # a line's first byte
    line: int  # its number


@dataclass(slots=True)
class FileRead:
    """One file's new lines, handed to the consumer."""

    path: str  # where the bytes are read now
    label: str  # where the file was first seen (see FileCursor.label)
    inode: int
    mtime: float
    settled: bool  # unchanged for settle_seconds, or rotated away: its last event is complete
    final: bool  # rotated away: nothing more will be written, a last partial line included
    start: Position
    lines: Iterator[Line]


Consumer = Callable[[FileRead], Position]
Progress = Callable[[PollStats], None]


class Tailer:
    """Follows the files that `patterns` match (`**` descends folders); see the module doc."""

    def __init__(self, patterns: Sequence[str], limits: TailLimits | None = None) -> None:
        self.patterns = [os.path.abspath(os.path.expanduser(p)) for p in patterns]
        self.limits = limits or TailLimits()

    def poll(
        self,
        cursor: LogCursor,
        consume: Consumer,
        stats: PollStats | None = None,
        progress: Progress | None = None,
    ) -> tuple[LogCursor, PollStats]:
        """Hand every file's new lines to `consume`; the cursor to pass next time."""
        run = _Run(self.limits, consume, stats or PollStats(), progress)
        files = run.follow(cursor, discover(self.patterns))
        return LogCursor(files=files), run.stats


def discover(patterns: Sequence[str]) -> dict[str, os.stat_result]:
    """The regular files the patterns match, with their stat."""
    found: dict[str, os.stat_result] = {}
    for pattern in patterns:
        for path in glob.iglob(os.path.abspath(os.path.expanduser(pattern)), recursive=True):
            if path in found:
                continue
            try:
                st = os.stat(path)
            except OSError:
                continue  # gone between listing and stat, or a dangling link: `check` says so
            if stat.S_ISREG(st.st_mode):
                found[path] = st
    return found


def read_lines(
    fh: BinaryIO, start: int, end: int, number: int, cap: int, *, final: bool
) -> Iterator[Line]:
    """The lines between bytes `start` and `end`, each cut to `cap` bytes.

    A last line without its newline is left for later unless `final`: its writer may be in
    the middle of it.
    """
    fh.seek(start)
    pos = start
    while pos < end:
        data = fh.readline(min(cap, end - pos))
        if not data:
            return  # the file shrank under us: the next poll sees it truncated
        size, complete = len(data), data.endswith(b"\n")
        if not complete and size == cap:
            skipped, complete = _skip_rest(fh, pos + size, end)
            size += skipped
        if not complete and not final:
            return
        kept = data[:-1] if data.endswith(b"\n") else data
        cut = size - complete > len(kept)
        yield Line(pos, pos + size, number, decode_line(kept, cut=cut))
        pos += size
        number += 1


def _skip_rest(fh: BinaryIO, at: int, end: int) -> tuple[int, bool]:
    """Read past the rest of a cut line without keeping it: (bytes skipped, newline seen)."""
    skipped = 0
    while at + skipped < end:
        chunk = fh.readline(min(_SKIP_CHUNK, end - at - skipped))
        if not chunk:
            break
        skipped += len(chunk)
        if chunk.endswith(b"\n"):
            return skipped, True
    return skipped, False


def decode_line(data: bytes, *, cut: bool = False) -> str:
    """Bytes of one line (no newline) as text: invalid UTF-8 replaced, controls dropped."""
    text = data.decode("utf-8", errors="replace").removesuffix("\r")
    if not text.isprintable():
        text = _CONTROL.sub("", text)
    return text + TRUNCATION_MARKER if cut else text


def binary_reason(block: bytes, nul_share: float) -> str | None:
    """Why a file whose first bytes are `block` is not a text log; None if it is one."""
    for magic, kind in _MAGIC:
        if block.startswith(magic):
            return f"binary: {kind}"
    nuls = block.count(0)
    if block and nuls / len(block) >= nul_share:
        return f"binary: {nuls * 100 // len(block)}% NUL bytes in the first {len(block)} bytes"
    text = block.decode("utf-8", errors="replace")
    invalid = text.count("\ufffd")
    if text and invalid / len(text) >= _INVALID_SHARE:
        return (
            f"binary: {invalid * 100 // len(text)}% of the first {len(block)} bytes are not UTF-8"
        )
    return None


def _hash(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def _identity(st: os.stat_result | None) -> tuple[int, int] | None:
    return None if st is None else (st.st_dev, st.st_ino)


class _Run:
    """One poll's walk over the files; lives as long as the poll."""

    def __init__(
        self, limits: TailLimits, consume: Consumer, stats: PollStats, progress: Progress | None
    ) -> None:
        self.limits = limits
        self.consume = consume
        self.stats = stats
        self.progress = progress
        self.now = time.time()
        self.budget = limits.max_bytes_per_poll
        self.truncated: list[FileCursor] = []  # files found truncated this poll, as they were

    def follow(self, cursor: LogCursor, found: dict[str, os.stat_result]) -> dict[str, FileCursor]:
        """Known files first (their rotations free paths for new files), then new ones."""
        where = {_identity(st): path for path, st in found.items()}
        kept: dict[str, FileCursor] = {}
        claimed: set[tuple[int, int] | None] = set()
        for entry in sorted(cursor.files.values(), key=lambda e: e.path):
            identity = (entry.dev, entry.ino)
            claimed.add(identity)
            same = _identity(found.get(entry.path)) == identity
            path = entry.path if same else where.get(identity)
            if path is None:
                self._finish(entry)
                continue
            if path != entry.path:
                self.stats.rotated += 1
            kept[path] = self._continue(entry, path, found[path])
        # Oldest first, so that signals come out in the order things happened.
        for path, st in sorted(found.items(), key=lambda item: (item[1].st_mtime_ns, item[0])):
            if _identity(st) in claimed:
                continue  # followed already, or a hard link to a followed file
            claimed.add(_identity(st))
            started = self._start(path, st)
            if started is not None:
                kept[path] = started
        self.stats.files = len(kept)
        return kept

    def _continue(self, entry: FileCursor, path: str, st: os.stat_result) -> FileCursor:
        unchanged = st.st_size == entry.size and st.st_mtime_ns == entry.mtime_ns
        if entry.skipped or (unchanged and entry.offset >= st.st_size):
            return entry.model_copy(update={"path": path}) if path != entry.path else entry
        if self.budget <= 0:
            self.stats.deferred += 1
            return entry
        try:
            with open(path, "rb") as fh:
                block = fh.read(max(HEAD_BYTES, self.limits.sniff_bytes))
                if st.st_size < entry.offset or not _same_head(entry, block):
                    self.stats.truncated += 1
                    self.truncated.append(entry)
                    entry = self._begin(path, st, block, label=entry.label)
                    if entry.skipped:
                        return entry
                return self._read(fh, entry, path, st, block, final=False)
        except OSError as exc:
            self._problem(path, exc)
            return entry

    def _start(self, path: str, st: os.stat_result) -> FileCursor | None:
        if self.budget <= 0:
            self.stats.deferred += 1
            return None  # not in the cursor: still new next poll
        try:
            with open(path, "rb") as fh:
                block = fh.read(max(HEAD_BYTES, self.limits.sniff_bytes))
                entry = self._begin(path, st, block, label=path)
                self.stats.new_files += 1
                return entry if entry.skipped else self._read(fh, entry, path, st, block, False)
        except OSError as exc:
            self._problem(path, exc)
            return None

    def _finish(self, entry: FileCursor) -> None:
        """Rotated out of the globs, or deleted: read what is left if it can be found."""
        moved = None if entry.skipped else _find_moved(entry)
        if moved is None:
            self.stats.dropped += 1
            return
        path, st = moved
        try:
            with open(path, "rb") as fh:
                block = fh.read(HEAD_BYTES)
                if st.st_size >= entry.offset and _same_head(entry, block):
                    self.stats.rotated += 1
                    self._read(fh, entry, path, st, block, final=True)
                    return
        except OSError as exc:
            self._problem(path, exc)
        self.stats.dropped += 1  # its inode now holds another file, or it cannot be read

    def _begin(self, path: str, st: os.stat_result, block: bytes, label: str) -> FileCursor:
        """A cursor at byte 0 (or where a copy's original was left), or a skipped one."""
        head = block[:HEAD_BYTES]
        entry = FileCursor(
            path=path,
            label=label,
            dev=st.st_dev,
            ino=st.st_ino,
            head_len=len(head),
            head_hash=_hash(head),
        )
        reason = binary_reason(block[: self.limits.sniff_bytes], self.limits.binary_nul_share)
        if reason is not None:
            self.stats.skipped[path] = reason
            return entry.model_copy(
                update={"skipped": reason, "size": st.st_size, "mtime_ns": st.st_mtime_ns}
            )
        original = self._original_of(head, st)
        if original is not None:
            entry = entry.model_copy(update={"offset": original.offset, "line": original.line})
        return entry

    def _original_of(self, head: bytes, st: os.stat_result) -> FileCursor | None:
        """The truncated file this one is a copy of (copytruncate's copy), if any: its
        lines up to where the original was left were consumed from the original."""
        for entry in self.truncated:
            if st.st_size >= entry.offset and entry.head_len and _same_head(entry, head):
                return entry
        return None

    def _read(
        self,
        fh: BinaryIO,
        entry: FileCursor,
        path: str,
        st: os.stat_result,
        block: bytes,
        final: bool,
    ) -> FileCursor:
        settled = final or self.now - st.st_mtime >= self.limits.settle_seconds
        lines = read_lines(
            fh, entry.offset, st.st_size, entry.line, self.limits.max_line_bytes, final=final
        )
        start = Position(entry.offset, entry.line)
        read = FileRead(path, entry.label, entry.ino, st.st_mtime, settled, final, start, lines)
        offset, line = self.consume(read)
        self.budget -= st.st_size - entry.offset
        self.stats.files_read += 1
        if self.progress is not None:
            self.progress(self.stats)
        head = block[:HEAD_BYTES]  # may be longer than when first hashed: keep the longer
        return entry.model_copy(
            update={
                "path": path,
                "size": st.st_size,
                "mtime_ns": st.st_mtime_ns,
                "offset": offset,
                "line": line,
                "head_len": len(head),
                "head_hash": _hash(head),
            }
        )

    def _problem(self, path: str, exc: OSError) -> None:
        self.stats.problems.append(f"{path}: cannot read ({exc.strerror or exc})")


def _same_head(entry: FileCursor, block: bytes) -> bool:
    return len(block) >= entry.head_len and _hash(block[: entry.head_len]) == entry.head_hash


def _find_moved(entry: FileCursor) -> tuple[str, os.stat_result] | None:
    """The file's new path if it was renamed within its folder (logrotate's way)."""
    try:
        with os.scandir(os.path.dirname(entry.path)) as items:
            for item in items:
                if item.inode() == entry.ino and item.is_file(follow_symlinks=False):
                    st = item.stat(follow_symlinks=False)
                    if st.st_dev == entry.dev:
                        return item.path, st
    except OSError:
        return None  # the folder went too
    return None
