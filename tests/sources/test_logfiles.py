"""The log-file source on real files: tailing, rotation, events, formats, hostile input."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import time
import traceback
import tracemalloc
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Literal

import pytest

from bot.config import LogSourceConfig, Settings
from bot.demo.dagspec import DagSpec
from bot.demo.operators import Operator, TaskContext
from bot.demo.runner import FlakyTask, RuntimeFaults, execute_dag
from bot.intake.logformats import TRUNCATION_MARKER
from bot.intake.signals import RawSignal
from bot.sources.logfiles import (
    LogCursor,
    LogFileSource,
    LogLimits,
    airflow_try,
    parse_timestamp,
)

RUN = "scheduled__2026-11-20T00:00:00+00:00"
ROW: dict[str, int] = {"orders": 1}  # without the "customers" the task code looks up
TASK_DIR = f"dag_id=daily_warehouse/run_id={RUN}/task_id=load_orders"


def af(level: str, message: str, second: int = 0, where: str = "taskinstance.py:1157") -> str:
    """One line as Airflow 2 writes it."""
    return f"[2026-11-20, 02:00:{second:02d} UTC] {{{where}}} {level} - {message}\n"


def make_source(
    tmp_path: Path,
    *patterns: str,
    fmt: Literal["airflow", "jsonl", "text"] = "airflow",
    header: str | None = None,
    **limits: Any,
) -> LogFileSource:
    """A source over `tmp_path`; the last event of a file counts as finished unless a
    test says otherwise (settle_seconds=0)."""
    config = LogSourceConfig(
        name="test",
        paths=[str(tmp_path / p) for p in patterns],
        format=fmt,
        header_pattern=header,
    )
    return LogFileSource(config, limits=LogLimits(**{"settle_seconds": 0, **limits}))


def round_trip(cursor: LogCursor) -> LogCursor:
    """What a restart sees: the cursor as saved to JSON and read back."""
    return LogCursor.model_validate(json.loads(json.dumps(cursor.model_dump(mode="json"))))


def titles(signals: list[RawSignal]) -> list[str]:
    return [s.title for s in signals]


def append(path: Path, data: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "ab") as fh:
        fh.write(data.encode() if isinstance(data, str) else data)


# ---------------------------------------------------------------- tailing


def test_a_partial_last_line_waits_for_its_newline(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    source = make_source(tmp_path, "*.log")
    append(log, af("ERROR", "first") + af("ERROR", "second, half wri").rstrip("\n"))
    signals, cursor = source.poll(None)
    assert titles(signals) == ["first"]
    assert cursor.files[str(log)].offset == len(af("ERROR", "first"))

    append(log, "tten\n" + af("INFO", "fine"))
    signals, cursor = source.poll(round_trip(cursor))
    assert titles(signals) == ["second, half written"]
    assert signals[0].detail["line"] == 2
    assert source.poll(cursor)[0] == []


def test_restart_from_a_saved_cursor_neither_loses_nor_repeats(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    text = "".join(af("ERROR" if i % 3 == 0 else "INFO", f"message {i}", i % 60) for i in range(60))
    cursor: dict[str, object] | None = None
    seen: list[RawSignal] = []
    for start in range(0, len(text), 97):  # writes that end mid-line, each poll a new process
        append(log, text[start : start + 97])
        signals, new = make_source(tmp_path, "*.log").poll(cursor)
        seen += signals
        cursor = json.loads(new.model_dump_json())
    assert titles(seen) == [f"message {i}" for i in range(0, 60, 3)]
    assert [s.detail["line"] for s in seen] == list(range(1, 61, 3))


def test_reading_again_after_a_crash_gives_the_same_dedup_keys(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    append(log, af("ERROR", "one"))
    _, before = make_source(tmp_path, "*.log").poll(None)
    append(log, af("ERROR", "two") + af("ERROR", "three"))
    first, _ = make_source(tmp_path, "*.log").poll(before)
    # The process died before saving its cursor: the next one starts from the old one.
    again, _ = make_source(tmp_path, "*.log").poll(round_trip(before))
    assert titles(first) == ["two", "three"]
    assert [s.dedup_key for s in again] == [s.dedup_key for s in first]
    assert len({s.dedup_key for s in first}) == 2


def test_rotation_by_rename_finishes_the_old_file_then_reads_the_new(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    append(log, af("ERROR", "one"))
    source = make_source(tmp_path, "*.log")
    _, cursor = source.poll(None)
    # The writer still had the old file open: its last lines, a partial one too, land there.
    append(log, af("ERROR", "two") + "[2026-11-20, 02:00:09 UTC] {x.py:1} ERROR - three")
    log.rename(tmp_path / "app.log.1")  # out of the glob
    append(log, af("ERROR", "four"))

    signals, cursor = source.poll(round_trip(cursor))
    assert titles(signals) == ["two", "three", "four"]
    assert signals[0].detail["file"] == str(log)
    assert signals[0].detail["path"] == str(tmp_path / "app.log.1")
    assert list(cursor.files) == [str(log)]
    assert source.last_stats.rotated == 1
    assert source.poll(cursor)[0] == []


def test_a_renamed_file_still_under_the_globs_is_followed_not_reread(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    append(log, af("ERROR", "one"))
    source = make_source(tmp_path, "app.log*")
    _, cursor = source.poll(None)
    append(log, af("ERROR", "two"))
    log.rename(tmp_path / "app.log.1")
    append(log, af("ERROR", "three"))

    signals, cursor = source.poll(cursor)
    assert sorted(titles(signals)) == ["three", "two"]
    assert cursor.files[str(tmp_path / "app.log.1")].label == str(log)
    assert source.poll(cursor)[0] == []


def test_copytruncate_reads_the_file_again_from_the_start(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    append(log, af("ERROR", "one", 1) + af("ERROR", "two", 2))
    source = make_source(tmp_path, "*.log")
    _, cursor = source.poll(None)
    old_keys = {s.dedup_key for s in source.poll(LogCursor())[0]}

    shutil.copyfile(log, tmp_path / "app.log.1")
    log.write_bytes(b"")  # truncated in place: same inode
    append(log, af("ERROR", "three", 3) + af("INFO", "a longer file than before", 4) * 3)
    signals, cursor = source.poll(cursor)
    assert titles(signals) == ["three"]
    assert signals[0].detail["line"] == 1
    assert signals[0].dedup_key not in old_keys  # same offset, same inode, other event
    assert source.last_stats.truncated == 1


def test_a_file_replaced_by_a_longer_one_is_read_from_the_start(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    append(log, af("INFO", "old", 1))
    source = make_source(tmp_path, "*.log")
    _, cursor = source.poll(None)
    # Truncated and rewritten past the old offset between two polls: only the head tells.
    log.write_text(af("ERROR", "new", 2) + af("INFO", "more", 3))
    signals, _ = source.poll(cursor)
    assert titles(signals) == ["new"]


def test_the_copy_of_a_copytruncated_file_continues_where_it_was_left(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    append(log, af("ERROR", "one", 1))
    source = make_source(tmp_path, "app.log*")
    _, cursor = source.poll(None)
    append(log, af("ERROR", "two", 2))  # written before the copy, never polled
    shutil.copyfile(log, tmp_path / "app.log.1")
    log.write_bytes(b"")
    append(log, af("ERROR", "three", 3))

    signals, cursor = source.poll(cursor)
    assert sorted(titles(signals)) == ["three", "two"]
    assert source.poll(cursor)[0] == []


def test_new_files_below_double_star_are_found_and_deleted_ones_dropped(tmp_path: Path) -> None:
    source = make_source(tmp_path, "logs/**/*.log")
    first = tmp_path / "logs" / "a.log"
    append(first, af("INFO", "fine"))
    _, cursor = source.poll(None)
    deep = tmp_path / "logs" / "x" / "y" / "b.log"
    append(deep, af("ERROR", "deep"))
    first.unlink()

    signals, cursor = source.poll(cursor)
    assert titles(signals) == ["deep"]
    assert list(cursor.files) == [str(deep)]
    assert source.last_stats.dropped == 1


def test_the_last_event_waits_until_the_file_settles(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    source = make_source(tmp_path, "*.log", settle_seconds=3600)
    append(log, af("INFO", "start") + af("ERROR", "Task failed with exception"))
    append(log, 'Traceback (most recent call last):\n  File "t.py", line 3, in run\n')
    signals, cursor = source.poll(None)
    assert signals == [] and source.last_stats.events == 1  # INFO decided, ERROR held

    append(log, "    load()\nKeyError: 'customers'\n")
    signals, cursor = source.poll(round_trip(cursor))
    assert signals == []  # just written: may still grow

    old = time.time() - 7200
    os.utime(log, (old, old))
    signals, cursor = source.poll(round_trip(cursor))
    assert titles(signals) == ["KeyError: 'customers'"]
    assert signals[0].detail["lines"] == 5
    assert source.poll(cursor)[0] == []


def test_a_poll_past_its_byte_budget_leaves_the_other_files_for_the_next(tmp_path: Path) -> None:
    for name in ("a", "b", "c"):
        append(tmp_path / f"{name}.log", af("ERROR", name))
    source = make_source(tmp_path, "*.log", max_bytes_per_poll=1)
    seen: list[int] = []
    signals, cursor = source.poll(None, progress=lambda stats: seen.append(stats.files_read))
    assert len(signals) == 1 and seen == [1] and source.last_stats.deferred == 2
    signals_2, cursor = source.poll(cursor)
    signals_3, cursor = source.poll(cursor)
    assert sorted(titles(signals + signals_2 + signals_3)) == ["a", "b", "c"]
    assert len(cursor.files) == 3 and source.poll(cursor)[0] == []


# ---------------------------------------------------------------- events


def _failed_try_log() -> str:
    return (
        af("INFO", "Starting attempt 1 of 2", 1)
        + af("ERROR", "Task failed with exception", 5, "taskinstance.py:1935")
        + "Traceback (most recent call last):\n"
        + '  File "/home/airflow/.local/lib/python3.11/site-packages/airflow/operators/'
        'python.py", line 192, in execute\n'
        + "    return_value = self.execute_callable()\n"
        + '  File "/opt/airflow/dags/load.py", line 12, in load_orders\n'
        + '    {"orders": 1}["customers"]\n'
        + "KeyError: 'customers'\n"
        + af("INFO", "Marking task as UP_FOR_RETRY.", 6, "taskinstance.py:1398")
    )


def test_a_traceback_in_an_airflow_log_is_one_event_titled_by_its_exception(
    tmp_path: Path,
) -> None:
    log = tmp_path / "logs" / TASK_DIR / "attempt=1.log"
    append(log, _failed_try_log())
    signals, _ = make_source(tmp_path, "logs/**/*.log").poll(None)

    assert len(signals) == 1
    signal = signals[0]
    assert signal.kind == "log_error" and signal.source == "logs:test"
    assert signal.title == "KeyError: 'customers'"
    assert signal.asset == "task.daily_warehouse.load_orders"
    assert signal.run_id == RUN
    assert signal.observed_at == datetime(2026, 11, 20, 2, 0, 5, tzinfo=UTC)
    detail = signal.detail
    assert (detail["line"], detail["lines"], detail["level"]) == (2, 7, "ERROR")
    assert (detail["try_number"], detail["task_id"], detail["run_id"]) == (1, "load_orders", RUN)
    assert detail["message"] == "Task failed with exception"
    assert detail["logger"] == "taskinstance.py:1935"
    assert detail["text"].splitlines()[1:] == _failed_try_log().splitlines()[2:8]
    assert "KeyError" in detail["template_text"] and len(detail["template_id"]) == 16


def _raised_chain() -> str:
    """KeyError, the direct cause of a ValueError, during whose handling a RuntimeError."""
    try:
        try:
            ROW["customers"]
        except KeyError as exc:
            raise ValueError("no customers column") from exc
    except ValueError:
        try:
            raise RuntimeError("load of orders failed")
        except RuntimeError:
            return traceback.format_exc()
    raise AssertionError("unreachable")


def _unraised_outer() -> str:
    """A cause with a traceback, then an exception never raised: it prints no frames."""
    try:
        ROW["customers"]
    except KeyError as exc:
        error = RuntimeError("load of orders failed")
        error.__cause__ = exc
    return "".join(traceback.format_exception(error))


@pytest.mark.parametrize("chained", [_raised_chain(), _unraised_outer()])
def test_chained_exceptions_stay_one_event_titled_by_the_last(tmp_path: Path, chained: str) -> None:
    assert "direct cause" in chained
    log = tmp_path / "a.log"
    append(log, af("ERROR", "Task failed with exception") + chained + af("INFO", "after"))
    signals, _ = make_source(tmp_path, "*.log").poll(None)
    assert titles(signals) == ["RuntimeError: load of orders failed"]
    assert signals[0].detail["lines"] == 1 + len(chained.splitlines())
    assert signals[0].detail["text"].endswith("RuntimeError: load of orders failed")


def test_a_long_traceback_keeps_its_head_and_its_exception_line(tmp_path: Path) -> None:
    frames = "".join(
        f'  File "deep.py", line {i}, in recurse\n    recurse()\n' for i in range(2000)
    )
    tb = "Traceback (most recent call last):\n" + frames + "RecursionError: too deep\n"
    log = tmp_path / "a.log"
    append(log, af("ERROR", "Task failed with exception") + tb + af("INFO", "after"))
    source = make_source(tmp_path, "*.log")
    signals, _ = source.poll(None)
    text = signals[0].detail["text"]
    assert titles(signals) == ["RecursionError: too deep"]
    assert signals[0].detail["lines"] == 4003
    assert len(text) <= source.limits.max_event_chars
    assert text.startswith(af("ERROR", "Task failed with exception") + "Traceback")
    assert text.endswith("    recurse()\nRecursionError: too deep")
    assert "lines omitted …]" in text


def test_an_exception_group_is_titled_by_the_group_not_its_members(tmp_path: Path) -> None:
    members: list[Exception] = []
    for member in (ValueError("orders"), KeyError("customers")):
        try:
            raise member
        except Exception as exc:  # raised, so that each prints a traceback of its own
            members.append(exc)
    try:
        raise ExceptionGroup("two loads failed", members)
    except ExceptionGroup:
        text = traceback.format_exc()
    assert "    | Traceback (most recent call last):" in text and "    | KeyError" in text
    log = tmp_path / "a.log"
    append(log, af("ERROR", "Task failed with exception") + text + af("INFO", "after"))
    signals, _ = make_source(tmp_path, "*.log").poll(None)
    assert titles(signals) == ["ExceptionGroup: two loads failed (2 sub-exceptions)"]


def test_json_lines(tmp_path: Path) -> None:
    lines = [
        {"timestamp": "2026-11-20T02:00:01Z", "level": "info", "message": "started"},
        {
            "timestamp": "2026-11-20T02:00:02.250+01:00",
            "level": "error",
            "logger": "loader",
            "message": "load failed",
            "exc_info": 'Traceback (most recent call last):\n  File "l.py", line 1, in '
            "<module>\nValueError: bad row 17",
        },
        {"ts": 1795658403, "levelname": "CRITICAL", "msg": "disk full"},
    ]
    log = tmp_path / "app.jsonl"
    append(log, "".join(json.dumps(line) + "\n" for line in lines))
    append(log, "a stray stdout line\n" + '{"level": "error", "error": "no message key"}\n')
    signals, _ = make_source(tmp_path, "*.jsonl", fmt="jsonl").poll(None)

    assert titles(signals) == [
        "ValueError: bad row 17",
        "disk full",
        '{"level": "error", "error": "no message key"}',
    ]
    load, disk, keyless = signals
    assert load.detail["message"] == "load failed" and load.detail["logger"] == "loader"
    assert load.detail["traceback"].endswith("ValueError: bad row 17")
    assert load.observed_at == datetime(2026, 11, 20, 1, 0, 2, 250_000, tzinfo=UTC)
    assert disk.observed_at == datetime.fromtimestamp(1795658403, UTC)
    assert disk.detail["text"].endswith("\na stray stdout line")  # a continuation
    assert keyless.detail["line"] == 5 and keyless.asset == f"file:{log}"


TEXT_HEADER = (
    r"^(?P<ts>\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}) (?P<level>[A-Z]+) "
    r"(?P<logger>[\w.]+): (?P<content>.*)$"
)


def test_text_with_a_declared_header(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    append(
        log,
        "2026-11-20 02:00:01 INFO app.main: starting\n"
        "2026-11-20 02:00:02 ERROR app.db: query failed\n"
        "SELECT * FROM orders\n"
        "    WHERE id = 3\n"
        "2026-11-20 02:00:03 WARNING app.db: slow\n",
    )
    signals, _ = make_source(tmp_path, "*.log", fmt="text", header=TEXT_HEADER).poll(None)
    assert titles(signals) == ["query failed"]
    assert signals[0].detail["text"].splitlines() == [
        "2026-11-20 02:00:02 ERROR app.db: query failed",
        "SELECT * FROM orders",
        "    WHERE id = 3",
    ]
    assert signals[0].detail["logger"] == "app.db"
    assert signals[0].observed_at == datetime(2026, 11, 20, 2, 0, 2, tzinfo=UTC)


def test_a_loose_header_does_not_split_a_traceback_at_its_exception_line(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    append(
        log,
        "ERROR: load failed\n"
        "Traceback (most recent call last):\n"
        '  File "l.py", line 1, in <module>\n'
        "ValueError: bad row\n"
        "INFO: next\n",
    )
    loose = r"^(?P<level>\w+): (?P<content>.*)$"  # `ValueError: bad row` matches it too
    signals, _ = make_source(tmp_path, "*.log", fmt="text", header=loose).poll(None)
    assert titles(signals) == ["ValueError: bad row"]
    assert signals[0].detail["lines"] == 4


# ---------------------------------------------------------------- hostile input


def test_a_5_mb_line_is_cut_with_a_marker_without_being_held_whole(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    huge = "[2026-11-20, 02:00:01 UTC] {x.py:1} ERROR - payload " + "A" * 5_000_000 + "\n"
    append(log, huge + af("ERROR", "after the blob", 2))
    source = make_source(tmp_path, "*.log")
    tracemalloc.start()
    try:
        signals, cursor = source.poll(None)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2_000_000  # the line is 5 MB
    assert titles(signals)[1] == "after the blob" and signals[1].detail["line"] == 2
    assert signals[0].title.startswith("payload AAAA") and len(signals[0].title) <= 200
    assert len(signals[0].detail["text"]) <= source.limits.max_event_chars + 20
    assert signals[0].detail["text"].endswith(TRUNCATION_MARKER)
    assert cursor.files[str(log)].offset == log.stat().st_size
    assert source.last_stats.bytes == log.stat().st_size


def test_a_cut_line_keeps_its_marker_when_it_fits_the_event(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    append(log, af("ERROR", "x" * 5_000))
    signals, _ = make_source(tmp_path, "*.log", max_line_bytes=1_024).poll(None)
    assert signals[0].detail["text"].endswith("x" + TRUNCATION_MARKER)
    assert len(signals[0].detail["text"]) < 1_100


def test_invalid_utf8_and_nul_bytes_do_not_crash(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    append(
        log,
        b"[2026-11-20, 02:00:01 UTC] {x.py:1} ERROR - bad \xff\xfe bytes and \x00NUL\x00s\n"
        b"[2026-11-20, 02:00:02 UTC] {x.py:2} ERROR - cut short caf\xc3\xa9 \xe2\x82\r\n"
        b"\x00\x00\x00 \x1b[31mcolour\x1b[0m\n",
    )
    signals, _ = make_source(tmp_path, "*.log").poll(None)
    assert titles(signals) == ["bad \ufffd\ufffd bytes and NULs", "cut short café \ufffd"]
    for signal in signals:
        assert not any(ch in signal.detail["text"] for ch in "\x00\x1b\r")
    assert signals[1].detail["lines"] == 2


def test_a_binary_file_is_skipped_with_its_reason_once(tmp_path: Path) -> None:
    (tmp_path / "core.log").write_bytes(b"\x00\x00\x00\x2a" * 4096 + b"ERROR - x\n")
    (tmp_path / "old.log").write_bytes(gzip.compress(af("ERROR", "zipped").encode()))
    (tmp_path / "ok.log").write_text(af("ERROR", "plain"))
    source = make_source(tmp_path, "*.log")
    signals, cursor = source.poll(None)
    assert titles(signals) == ["plain"]
    skipped = source.last_stats.skipped
    assert skipped[str(tmp_path / "core.log")].startswith("binary: 75% NUL bytes")
    assert skipped[str(tmp_path / "old.log")] == "binary: gzip-compressed"

    signals, cursor = source.poll(round_trip(cursor))
    assert signals == [] and source.last_stats.skipped == {}  # said once
    assert cursor.files[str(tmp_path / "core.log")].skipped is not None


# ---------------------------------------------------------------- where it happened


def test_airflow_paths_name_the_task_try() -> None:
    found = airflow_try(
        f"/var/log/airflow/dag_id=d/run_id={RUN}/task_id=t/map_index=3/attempt=2.log"
    )
    assert found is not None
    assert (found.asset, found.run_id, found.try_number, found.map_index) == (
        "task.d.t",
        RUN,
        2,
        3,
    )
    assert airflow_try("/var/log/app/app.log") is None


def test_a_file_outside_airflow_is_its_own_asset(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    append(log, af("CRITICAL", "disk full"))
    signals, _ = make_source(tmp_path, "*.log").poll(None)
    assert signals[0].asset == f"file:{log}" and signals[0].run_id is None
    assert "try_number" not in signals[0].detail


def test_timestamps_in_the_formats_logs_write() -> None:
    assert parse_timestamp("2026-11-20, 02:00:01 UTC") == datetime(
        2026, 11, 20, 2, 0, 1, tzinfo=UTC
    )
    assert parse_timestamp("2026-11-20 02:00:01,500") == datetime(
        2026, 11, 20, 2, 0, 1, 500_000, tzinfo=UTC
    )
    assert parse_timestamp("2026-11-20T03:00:01.123+0100") == datetime(
        2026, 11, 20, 2, 0, 1, 123_000, tzinfo=UTC
    )
    assert parse_timestamp("1795658403000") == datetime.fromtimestamp(1795658403, UTC)
    assert parse_timestamp("yesterday") is None


# ---------------------------------------------------------------- prerequisites


def test_check_names_globs_without_files_and_files_it_cannot_read(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    append(logs / "a.log", af("INFO", "fine"))
    (logs / "gone.log").symlink_to(tmp_path / "nowhere.log")
    source = make_source(tmp_path, "logs/*.log", "missing/**/*.log")
    problems = source.check()
    assert problems == [
        f"cannot read {logs / 'gone.log'} (No such file or directory)",
        f"no file matches {tmp_path / 'missing/**/*.log'} "
        f"(folder {tmp_path / 'missing'} does not exist)",
    ]


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_check_names_files_without_permission(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    append(log, af("INFO", "fine"))
    log.chmod(0)
    assert make_source(tmp_path, "*.log").check() == [
        f"cannot read {log} (Permission denied)"
    ]


def test_check_says_when_no_line_has_the_formats_header(tmp_path: Path) -> None:
    append(tmp_path / "a.log", '{"level": "info", "message": "json, not airflow"}\n')
    assert make_source(tmp_path, "*.log").check() == [
        "no line in the first 8192 bytes of 1 recent file(s) starts with a "
        "'airflow' header; is `format` (or `header_pattern`) right?"
    ]
    assert make_source(tmp_path, "*.log", fmt="jsonl").check() == []


def test_check_warns_of_a_header_pattern_only_a_backtracking_engine_runs(tmp_path: Path) -> None:
    append(tmp_path / "a.log", "INFO: started\n")
    lazy = r"^(?P<level>.*?): (?P<content>.*)$"  # RE2 runs it: linear, no warning
    assert make_source(tmp_path, "*.log", fmt="text", header=lazy).check() == []
    lookahead = r"^(?P<level>[A-Z]+)(?=:): (?P<content>.*)$"
    (problem,) = make_source(tmp_path, "*.log", fmt="text", header=lookahead).check()
    assert "RE2 cannot run its header pattern" in problem


# ---------------------------------------------------------------- the demo platform's logs


def _load(ctx: TaskContext) -> None:
    """Stands in for the loader: the fault replaces it on the failing try."""
    ctx.log.logger.info("Loaded %d rows", 42)


def test_demo_task_logs_give_the_failed_try_as_a_signal(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home").with_defaults()
    assert settings.sources.logs is not None
    dag = DagSpec.model_validate(
        {
            "dag_id": "daily_warehouse",
            "default_args": {"owner": "data-platform", "retries": 1, "retry_delay_sec": 300},
            "tasks": {"load_shop_orders": {"operator": "load", "loader": "shop_orders"}},
        }
    )
    execute_dag(
        dag,
        date(2026, 11, 20),
        paths=settings.demo_platform,
        run_at=datetime(2026, 11, 21, 2, 0, tzinfo=UTC),
        latest=False,
        seed=1,
        operators={"load": Operator("PythonOperator", _load, _load)},
        faults=RuntimeFaults(flaky=[FlakyTask(task_id="load_shop_orders")]),
    )
    source = LogFileSource(settings.sources.logs[0])  # the default config: the demo's logs
    assert source.check() == []
    signals, cursor = source.poll(None)

    assert len(cursor.files) == 2  # attempt=1.log and attempt=2.log
    chain, failed = signals  # the traceback, then "Failed to execute job …"
    assert chain.title.startswith(
        "requests.exceptions.ConnectionError: HTTPSConnectionPool(host='api.shop.example.com'"
    )
    assert chain.asset == "task.daily_warehouse.load_shop_orders"
    assert chain.run_id == RUN and chain.detail["try_number"] == 1
    assert chain.detail["message"] == "Task failed with exception"
    assert chain.detail["text"].count("Traceback (most recent call last):") == 4
    assert chain.observed_at.date() == date(2026, 11, 21)  # the log's simulated time
    assert failed.title.startswith("Failed to execute job") and failed.detail["level"] == "ERROR"
    assert all(s.detail["file"].endswith("attempt=1.log") for s in signals)
    assert source.poll(cursor)[0] == []
