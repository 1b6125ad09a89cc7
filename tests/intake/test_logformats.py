"""Header patterns on lines that do not fit them: no stall, and the same groups on RE2."""

from __future__ import annotations

import functools
import re
import threading
import unicodedata
from pathlib import Path

import pytest
import re2

from bench.loghub import BENCHMARK_SETTINGS
from bot.intake.logformats import (
    _PLANS,
    BUILTIN_FORMATS,
    LogFormat,
    LogRecord,
    parse_line,
    stall_risk,
)
from bot.intake.re2_match import for_re2, on_re2

LOGHUB = Path(__file__).resolve().parents[2].parent / "shared" / "datasets" / "loghub-2k"
# A backtracking engine tries every split of these among a pattern's lazy fields: with `re`,
# 200 characters under HDFS's layout took 2.3 s and 800 did not end.
JUNK = {
    "words": "a " * 4_000,
    "words and a line break": "a " * 2_000 + "\n" + "b " * 2_000,
    "colons": "{" + '"a": ' * 1_600,
}
LAZY = r"^(?P<ts>.*?) (?P<level>.*?) (?P<logger>.*?): (?P<content>.*)$"
BOUND = 10.0  # seconds: bounds a hang, it is no speed assertion


def parse_within_bound(line: str, fmt: LogFormat | str) -> LogRecord:
    """`parse_line` in a thread, so that a stall fails the test instead of hanging it."""
    done: list[LogRecord] = []
    worker = threading.Thread(target=lambda: done.append(parse_line(line, fmt)), daemon=True)
    worker.start()
    worker.join(BOUND)
    assert done, f"{fmt}: a {len(line)}-character line did not parse in {BOUND} s"
    return done[0]


@pytest.mark.parametrize("junk", JUNK)
@pytest.mark.parametrize("system", sorted(BENCHMARK_SETTINGS))
def test_a_junk_line_under_a_loghub_layout_parses_without_stalling(system: str, junk: str) -> None:
    fmt = LogFormat.from_layout(system, BENCHMARK_SETTINGS[system].layout)
    line = JUNK[junk]
    record = parse_within_bound(line, fmt)
    # Some layouts are only spaces between fields (BGL): any line with enough words fits.
    assert (record.format, record.raw) in (("raw", line.strip()), (system, line.strip()))
    if record.format == "raw":
        assert record.content == line.strip()


@pytest.mark.parametrize("junk", ["words", "words and a line break"])  # no `: ` to fit
def test_a_junk_line_under_a_lazy_user_pattern_is_the_whole_line(junk: str) -> None:
    line = JUNK[junk]
    record = parse_within_bound(line, LogFormat(name="text", pattern=LAZY))
    assert (record.format, record.content) == ("raw", line.strip())


@pytest.mark.parametrize("junk", JUNK)
@pytest.mark.parametrize("name", BUILTIN_FORMATS)
def test_a_junk_line_under_a_builtin_format_falls_back(name: str, junk: str) -> None:
    line = JUNK[junk]
    record = parse_within_bound(line, BUILTIN_FORMATS[name])
    assert (record.format, record.content) == ("raw", line.strip())


@pytest.mark.parametrize(
    "line",
    [
        "[2026-11-20 02:00:01,001] {x.py:1} INFO -" + " " * 8_000 + "x\ny",
        "2026-11-20 02:00:01,001 - etl - ERROR -" + " " * 8_000 + "x\ny",
        "2026-11-20 02:00:01,001 ERROR etl:" + " " * 8_000 + "x\ny",
    ],
)
def test_a_builtin_header_before_a_broken_message_falls_back(line: str) -> None:
    """The builtin patterns' spaces before the message are possessive: giving them back
    one at a time could not let `.*` reach the end past a line break."""
    assert parse_within_bound(line, "auto").format == "raw"


def test_re2_gives_the_loghub_layouts_the_same_groups_as_re() -> None:
    if not LOGHUB.is_dir():
        pytest.skip(f"Loghub-2k not found at {LOGHUB} (../shared/datasets beside the repo)")
    compared = 0
    for system, setting in BENCHMARK_SETTINGS.items():
        fmt = LogFormat.from_layout(system, setting.layout)
        assert fmt.pattern is not None
        on_re, on_re2 = re.compile(fmt.pattern).match, _PLANS[fmt.pattern].exact
        path = LOGHUB / system / f"{system}_2k.log"
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            expected, found = on_re(line), on_re2(line)
            assert (found and found.groupdict()) == (expected and expected.groupdict()), line
            compared += 1
    assert compared >= 16 * 2_000


@pytest.mark.parametrize("escape", [r"\d", r"\w", r"\s", r"\D", r"\W", r"\S", r"[\w.]", r"[\s]"])
def test_re2_reads_pythons_classes_as_python_does(escape: str) -> None:
    """RE2's `\\d \\w \\s` are ASCII; spelled out for it, they match what `re` matches on
    every character Python's Unicode tables assign."""
    text = _assigned_characters()
    on_re2 = re2.compile(for_re2(escape))
    assert on_re2.findall(text) == re.findall(escape, text)


@functools.cache
def _assigned_characters() -> str:
    return "".join(
        chr(c) for c in range(0x110000) if unicodedata.category(chr(c)) not in ("Cn", "Cs")
    )


def test_a_record_reads_an_re2_match_as_it_reads_an_re_match() -> None:
    pattern = r"^(?P<date>\S+) (?P<time>\S+) (?P<level>\w+)\s+(?P<content>.*)$"
    fmt = LogFormat(name="app", pattern=pattern)
    assert stall_risk(fmt) is None  # on RE2
    record = parse_line("2026-11-20 02:00:01 ÉRREUR  café froid", fmt)
    assert (record.ts, record.level, record.logger) == ("2026-11-20 02:00:01", "ÉRREUR", None)
    assert record.content == "café froid"
    assert record.fields == {"date": "2026-11-20", "time": "02:00:01", "level": "ÉRREUR"}
    ascii_line = parse_line("2026-11-20 02:00:01 ERROR  disk full", fmt)  # matched as bytes
    assert (ascii_line.ts, ascii_line.level, ascii_line.content) == (
        "2026-11-20 02:00:01",
        "ERROR",
        "disk full",
    )
    assert ascii_line.fields == {"date": "2026-11-20", "time": "02:00:01", "level": "ERROR"}


def test_a_pattern_re2_refuses_still_parses_on_re_with_a_warning() -> None:
    lookahead = r"^(?P<level>[A-Z]+)(?=:): (?P<content>.*)$"
    backreference = r"^(?P<q>['\"])(?P<logger>\w+)(?P=q) (?P<content>.*)$"
    for pattern in (lookahead, backreference):
        assert for_re2(pattern) and on_re2(pattern) is None
        fmt = LogFormat(name="text", pattern=pattern)
        risk = stall_risk(fmt)
        assert risk is not None and "RE2 cannot run" in risk
    record = parse_line("ERROR: disk full", LogFormat(name="text", pattern=lookahead))
    assert (record.level, record.content) == ("ERROR", "disk full")
    record = parse_line("'etl' started", LogFormat(name="text", pattern=backreference))
    assert (record.logger, record.content) == ("etl", "started")
    assert stall_risk(LogFormat(name="text", pattern=LAZY)) is None
    assert all(stall_risk(fmt) is None for fmt in BUILTIN_FORMATS.values())
