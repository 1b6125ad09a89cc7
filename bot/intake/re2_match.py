r"""RE2 for header patterns: matching in time linear in the line, with Python's meaning.

Python's `re` backtracks: a pattern with several `.*?` fields tries every split of a line
that does not fit it, and one junk line can take minutes. RE2 cannot stall, and with
leftmost-first semantics it finds the same groups as `re` once `\d \w \s \Z` are spelled
out as Python reads them (RE2's own are ASCII only).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import re2


class Match(Protocol):
    """What a record reads of a match: Python's `re.Match` and RE2's both do."""

    def __getitem__(self, group: str) -> str | Any: ...
    def group(self, *groups: str) -> Any: ...
    def groupdict(self) -> dict[str, str | None]: ...


Matcher = Callable[[str], Match | None]


_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False  # a pattern RE2 refuses goes to `re`: no stderr noise
# Python's `\d \w \s` match any Unicode digit, letter, space; RE2's only ASCII ones. Spelled
# out for RE2, so that both engines give a pattern the same groups (`\D \W \S` inside a
# class stay ASCII on RE2: RE2 has no negated class within a class).
_FOR_RE2 = {
    "d": r"\p{Nd}",
    "w": r"\p{L}\p{N}_",
    "s": r"\s\x0b\x1c-\x1f\x85\p{Z}",
}
_RE2_ESCAPES = (  # outside a class, inside one
    {
        "d": _FOR_RE2["d"],
        "D": r"\P{Nd}",
        "w": f"[{_FOR_RE2['w']}]",
        "W": f"[^{_FOR_RE2['w']}]",
        "s": f"[{_FOR_RE2['s']}]",
        "S": f"[^{_FOR_RE2['s']}]",
        "Z": r"\z",
    },
    _FOR_RE2,
)


def on_re2(pattern: str) -> Matcher | None:
    """`pattern`'s match on RE2, in time linear in the line; None if RE2 cannot run it."""
    try:
        regex = re2.compile(for_re2(pattern), _RE2_OPTIONS)
    except re2.error:
        return None

    def match(text: str) -> Match | None:
        # RE2's binding maps byte offsets back to characters in Python, per match: an
        # ASCII line's bytes, whose offsets are its characters', match 2x quicker.
        if text.isascii():
            found = regex.match(text.encode())
            return None if found is None else _AsciiMatch(found)
        return regex.match(text)  # type: ignore[no-any-return]

    return match


class _AsciiMatch:
    """An RE2 match of an ASCII line's bytes, read as text."""

    __slots__ = ("_bytes",)

    def __init__(self, found: Any) -> None:
        self._bytes = found

    def __getitem__(self, group: str) -> str | None:
        return _text(self._bytes[group])

    def group(self, *groups: str) -> Any:
        found = self._bytes.group(*groups)
        return tuple(map(_text, found)) if len(groups) > 1 else _text(found)

    def groupdict(self) -> dict[str, str | None]:
        return {name: _text(value) for name, value in self._bytes.groupdict().items()}


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode("ascii")


def for_re2(pattern: str) -> str:
    r"""`pattern` for RE2, with Python's meaning of `\d \w \s \Z`."""
    out: list[str] = []
    i, in_class = 0, False
    while i < len(pattern):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern):
            escape = pattern[i : i + 2]
            out.append(_RE2_ESCAPES[in_class].get(escape[1], escape))
            i += 2
            continue
        if char == "[" and not in_class:  # a `]` first in a class is a character
            end = i + 1 + (pattern[i + 1 : i + 2] == "^")
            end += pattern[end : end + 1] == "]"
            out.append(pattern[i:end])
            i, in_class = end, True
            continue
        in_class = in_class and char != "]"
        out.append(char)
        i += 1
    return "".join(out)
