"""Log files as the investigation reads them: searched by task, run, time, pattern and level.

The files are those of `sources.logs` (globs, formats from `bot.sources.logfiles`). A file is
named by a label: its path relative to the folder above its glob's fixed root
(`logs/dag_id=…/run_id=…/task_id=…/attempt=1.log` for the demo), which is what citations
quote, and `read` takes only labels it handed out, never a path of the caller's choosing.

A line that starts a record (the format's header) gives the time and level of the lines that
continue it (a traceback), so a search for `BinderException` finds the exact line inside a
traceback with its record's time. Error messages get a template id from the intake's
`Templater`, so that `error_templates` can group them.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import PurePath

from agents.world import LogLine
from bot.config import LogSourceConfig
from bot.intake.logformats import LogFormat
from bot.intake.templates import Templater
from bot.sources.logevents import HeaderParser, TracebackScan, header_parser, is_error_level
from bot.sources.logfiles import airflow_try, literal_root, log_format, parse_timestamp
from bot.sources.tail import discover

MAX_LINE_CHARS = 2_000  # of one line, as returned
MAX_MATCHES = 20_000  # lines collected by one search before sorting: a runaway pattern stops
MAX_FILES = 5_000  # newest files one search reads
_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(?::|$)")  # as bot.sources.logevents
_RANK = {"TRACE": 5, "DEBUG": 10, "INFO": 20, "NOTICE": 25, "WARN": 30, "WARNING": 30}


@dataclass(frozen=True)
class _File:
    path: str
    label: str
    header: HeaderParser
    mtime: float


class LogFiles:
    """The `LogStore` over the files of some log sources; see the module docstring."""

    def __init__(self, sources: Sequence[LogSourceConfig], templater: Templater | None = None
                 ) -> None:
        self.sources = list(sources)
        self.templater = templater or Templater()
        self._lock = threading.Lock()
        self._formats: list[tuple[LogSourceConfig, LogFormat, HeaderParser]] = [
            (s, fmt, header_parser(fmt, MAX_LINE_CHARS)) for s in self.sources
            for fmt in [log_format(s)]]

    # ------------------------------------------------------------ the files

    def files(self) -> list[_File]:
        """Every file the sources' globs match now, newest first."""
        found: dict[str, _File] = {}
        for source, _fmt, header in self._formats:
            for pattern in source.paths:
                base = _label_base(pattern)
                for path, st in discover([pattern]).items():
                    if path not in found:
                        found[path] = _File(path, _label(path, base), header, st.st_mtime)
        return sorted(found.values(), key=lambda f: (-f.mtime, f.label))

    def label_ending(self, suffix: str) -> str | None:
        """The label of the file whose path ends with `suffix` (`dag_id=…/attempt=1.log`)."""
        tail = "/" + suffix.lstrip("/")
        return next((f.label for f in self.files()
                     if f.path.replace(os.sep, "/").endswith(tail)), None)

    # ------------------------------------------------------------ LogStore

    def search(self, *, task: str | None = None, run_id: str | None = None,
               since: datetime | None = None, until: datetime | None = None,
               pattern: str | None = None, level: str | None = None,
               limit: int = 100) -> list[LogLine]:
        regex = re.compile(pattern, re.IGNORECASE) if pattern else None
        found: list[LogLine] = []
        for file in self.files()[:MAX_FILES]:
            if not _file_matches(file, task, run_id):
                continue
            if since is not None and datetime.fromtimestamp(file.mtime, UTC) < since:
                continue  # written to last before the window: no line of it can be in it
            for record in self._records(file):
                head = record.lines[0]
                if not _in_window(head, level, since, until):
                    continue
                if regex is None:
                    found.append(self._templated(record) if record.message is not None else head)
                else:
                    found += [self._templated(record) if i == 0 and record.message is not None
                              else line for i, line in enumerate(record.lines)
                              if regex.search(line.text)]
                if len(found) >= MAX_MATCHES:
                    break
        oldest = datetime.min.replace(tzinfo=UTC)
        found.sort(key=lambda x: (x.timestamp or oldest, x.file, x.line_no))
        return found[:limit]

    def read(self, file: str, start_line: int, end_line: int) -> list[LogLine]:
        known = next((f for f in self.files() if f.label == file), None)
        if known is None:
            return []
        lines: list[LogLine] = []
        for record in self._records(known):
            if record.lines[0].line_no > end_line:
                break
            lines += [x for x in record.lines if start_line <= x.line_no <= end_line]
        return lines

    # ------------------------------------------------------------ reading

    def _records(self, file: _File) -> Iterator[_Record]:
        """The file's records: a header line and the lines that continue it, which take its
        time and level. Lines before the first header form a record of their own."""
        record: _Record | None = None
        try:
            handle = open(file.path, encoding="utf-8", errors="replace")  # noqa: SIM115
        except OSError:
            return
        with handle:
            for number, raw in enumerate(handle, 1):
                text = raw.rstrip("\r\n")[:MAX_LINE_CHARS]
                header = file.header(text) if text and text[0] not in " \t" else None
                expects = record is not None and record.scan.expects_exception
                if header is not None and not (expects and _EXCEPTION_LINE.match(text)):
                    if record is not None:
                        yield record
                    ts = parse_timestamp(header.ts) if header.ts else None
                    level = header.level.upper() if header.level else None
                    record = _Record([LogLine(file=file.label, line_no=number, timestamp=ts,
                                              level=level, text=text)], header.content)
                elif record is None:
                    record = _Record([LogLine(file=file.label, line_no=number, text=text)], None)
                else:
                    head = record.lines[0]
                    record.lines.append(LogLine(file=file.label, line_no=number,
                                                timestamp=head.timestamp, level=head.level,
                                                text=text))
                if record is not None:
                    record.scan.feed(text)
            if record is not None:
                yield record

    def _templated(self, record: _Record) -> LogLine:
        """The record's first line with the template of what went wrong: the traceback's
        exception when there is one (an Airflow failure's ERROR line says only "Task failed
        with exception"), else its message. Only errors are templated."""
        head = record.lines[0]
        if not _is_error(head.level) or record.message is None:
            return head
        with self._lock:  # the templater is not thread-safe; subagents may run in parallel
            template = self.templater.add(record.scan.exception or record.message)
        return head.model_copy(update={"template_id": template.id, "template": template.text})


@dataclass
class _Record:
    lines: list[LogLine]
    message: str | None  # the header's message; None for lines before any header
    scan: TracebackScan = field(default_factory=TracebackScan)


def _in_window(head: LogLine, level: str | None, since: datetime | None,
               until: datetime | None) -> bool:
    if level is not None and not _at_least(head.level, level):
        return False
    if since is not None and head.timestamp is not None and head.timestamp < since:
        return False
    return not (until is not None and head.timestamp is not None and head.timestamp > until)


def _at_least(found: str | None, wanted: str) -> bool:
    if _is_error(wanted):
        return _is_error(found)
    if found is None:
        return False
    return _is_error(found) or _RANK.get(found.upper(), 0) >= _RANK.get(wanted.upper(), 0)


def _is_error(level: str | None) -> bool:
    return is_error_level(level)


def _file_matches(file: _File, task: str | None, run_id: str | None) -> bool:
    if task is None and run_id is None:
        return True
    found = airflow_try(file.path)
    if task is not None:
        dag, _, task_id = task.removeprefix("task.").rpartition(".")
        if found is not None:
            if found.task_id != task_id or (dag and found.dag_id != dag):
                return False
        elif task_id not in file.label:
            return False
    if run_id is not None:
        return (found.run_id == run_id) if found is not None else run_id in file.label
    return True


def _label_base(pattern: str) -> str:
    """The folder labels are relative to: the parent of the glob's fixed root, so the root's
    own name (`logs`) starts every label."""
    return str(PurePath(literal_root(pattern)).parent)


def _label(path: str, base: str) -> str:
    return os.path.relpath(path, base).replace(os.sep, "/").replace(" ", "%20")
