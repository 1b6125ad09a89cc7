"""Loghub's layout notation (`<Date> <Time> <Level> <Component>: <Content>`) as regexes:
the exact one Loghub's parsers use, and a quicker `re` variant that finds the same match
or none (see `layout_to_regex`)."""

from __future__ import annotations

import re

_FIELD = re.compile(r"<([A-Za-z_]\w*)>")


def layout_to_regex(layout: str, fast: bool = False) -> str:
    """The layout's regex, as Loghub writes it: `(?P<field>.*?)` per field, `\\s+` per space.

    `fast=True`: a variant that finds the same match on the lines it matches at all, and
    leaves the others to the exact regex. Each lazy field the regex engine would extend one
    character at a time, trying the whole rest of the line at each, becomes a possessive
    run of the characters that cannot start what follows it (`(?P<level>\\S*+)` before
    a space, `[^:\\n]*+` before a colon), and a space a possessive `\\s++`. The variant
    walks the exact regex's first path: the positions it skips could not have continued
    the match, and what it never tries (a longer field, a shorter space) the exact regex would try only after that
    path failed. A field followed by spaces then text (`<Program> - `) may hold spaces
    (`chrome.exe *64`): it runs on over each run of spaces the text does not follow, the
    first place the exact regex would try the rest of the line at.
    """
    parts = _FIELD.split(layout)  # text, field name, text, …, text
    exact = [
        _field(part) if i % 2 else re.sub(r" +", r"\\s+", part) for i, part in enumerate(parts)
    ]
    if not fast:
        return "^" + "".join(exact) + "$"
    regex = [re.sub(r" +", r"\\s++", part) for part in parts]
    for i in range(1, len(parts), 2):
        name = parts[i].lower()
        stops = None if name == "content" else _first_chars("".join(exact[i + 1 :]))
        if stops is None:
            regex[i] = exact[i]
        elif _spaces_then_text(exact[i + 1]):  # a run of spaces: lookahead once, then past it
            regex[i] = rf"(?P<{name}>\S*+(?:(?!{regex[i + 1]})[^\S\n]++\S*+)*+)"
        else:  # `\S`: the same as `[^\s\n]`, and a tenth quicker
            run = r"\S" if stops == r"\s" else f"[^{stops}\\n]"
            regex[i] = f"(?P<{name}>{run}*+)"
    return "^" + "".join(regex) + "$"


def _spaces_then_text(part: str) -> bool:
    """Whether a layout's text between two fields is spaces then plain text (` - `)."""
    rest = part.removeprefix("\\s+")
    return (
        rest != part and _first_chars(rest) not in (None, r"\s") and not set(rest) & set("()|?*{}")
    )


def _field(name: str) -> str:
    name = name.lower()
    return f"(?P<{name}>.*)" if name == "content" else f"(?P<{name}>.*?)"


_REGEX_SYNTAX = frozenset(".^$*+?{}[]|()\\")


def _first_chars(regex: str) -> str | None:
    """The characters a match of `regex` can start with, as the inside of a character class;
    None if this reading of the few constructs layouts use cannot tell."""
    if regex.startswith("\\s"):
        first, rest = r"\s", regex[2:]
    elif regex.startswith("\\") and len(regex) > 1 and not regex[1].isalnum():
        first, rest = re.escape(regex[1]), regex[2:]  # an escaped character: `\\[`
    elif regex.startswith("("):
        end = _group_end(regex)
        if end is None:
            return None
        inner, rest = regex[1:end], regex[end + 1 :]
        inner = inner.removeprefix("?:")
        if inner.startswith("?") or "|" in inner:
            return None
        first = _first_chars(inner)  # type: ignore[assignment]
        if first is None or rest[:1] == "{":
            return None
        if rest[:1] in ("?", "*"):  # an optional group: or what comes after it
            after = _first_chars(rest[2:] if rest[1:2] in ("?", "+") else rest[1:])
            return None if after is None else first + after
        return first
    elif regex and regex[0] not in _REGEX_SYNTAX:
        first, rest = re.escape(regex[0]), regex[1:]
    else:
        return None
    return None if rest[:1] in ("?", "*", "{") else first  # an optional character


def _group_end(regex: str) -> int | None:
    """Index of the `)` closing the group `regex` starts with."""
    depth, i = 0, 0
    while i < len(regex):
        char = regex[i]
        if char == "\\":
            i += 1  # the escaped character is skipped below
        elif char == "[":  # a class: brackets and parentheses in it are characters
            i += 2 if regex[i + 1 : i + 2] == "^" else 1
            i += 1 if regex[i : i + 1] == "]" else 0
            while i < len(regex) and regex[i] != "]":
                i += 2 if regex[i] == "\\" else 1
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return None
