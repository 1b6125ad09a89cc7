"""Masks for the variable parts of log messages: ids, numbers, addresses, times, paths…

A mask replaces a value with a typed placeholder (`<NUM>`, `<IP>`…) before template mining,
so that two messages that differ only in such values become the same token sequence. One
ordered list of rules serves every log: a user's logs arrive unlabelled, so nothing here is
tuned for one source.

The rules are applied in ONE pass by a combined alternation (the first rule that matches at
the leftmost position wins), not one `re.sub` per rule: that is several times faster on long
lines and lets an early, specific rule (a timestamp) claim text a later, generic one (a
number) would otherwise cut into pieces. And the pass runs once per *digit shape* of a line
(its text with every digit a 1): lines that differ only in numbers share a cached
`MaskPlan`, which is most lines of a log. A rule starts only where a value can start, not
right after a letter or digit.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from operator import itemgetter

from pydantic import BaseModel, ConfigDict, Field

# Character classes shared by several rules.
_NOT_ALNUM_BEFORE = r"(?<![A-Za-z0-9])"
_NOT_ALNUM_AFTER = r"(?![A-Za-z0-9])"
_MONTH = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]*"
_WEEKDAY = r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)[a-z]*"
_TIME = r"\d{1,2}:\d{2}(?::\d{2})?(?:[.,:]\d{1,9})?"
_TZ = r"(?:\s?(?:Z|UTC|GMT|[+-]\d{2}:?\d{2}))?"
# Possessive quantifiers (`*+`, `++`) where giving characters back can never lead to a match
# (the next thing a rule needs cannot be such a character): the same matches, found
# without retrying every shorter prefix of every word. Part of why masking is cheap.
_NUMBER = r"[-+]?\d++(?:\.\d++)*"
# A number a unit must follow: nor can giving back a decimal part help (`.` starts no unit).
_QUANTITY = r"[-+]?\d++(?:\.\d++)*+"
# Units written after a space must be words; single letters only count when glued to the
# number (`5s`, `10m`, `512k`), or `step 2 d` and `route 3 m` would read as quantities.
_DURATION = (
    rf"{_QUANTITY}(?:\s?(?:ns|us|µs|ms|secs?|seconds?|mins?|minutes?|hrs?|hours?|days?)"
    rf"|[smhd])"
)
_SIZE = rf"{_QUANTITY}(?:\s?(?:[KMGTP]i?B|B|bytes?)|[kKMGTP])"


class MaskRule(BaseModel):
    """One kind of variable value and how to recognise it."""

    model_config = ConfigDict(frozen=True)

    name: str = Field(description="Placeholder name: the value becomes `<name>`.")
    pattern: str = Field(description="Regex of the value, without named groups.")


# Order matters: at one position the first rule that matches wins, so specific and long
# rules (URL, timestamp, Airflow run id) come before the generic ones (number, hex).
DEFAULT_RULES: tuple[MaskRule, ...] = (
    # Airflow run ids: `scheduled__2026-11-20T00:00:00+00:00`, `manual__…`, `backfill__…`.
    MaskRule(
        name="RUN_ID",
        pattern=r"\b(?:scheduled|manual|backfill|dataset_triggered|asset_triggered)__[\w:.+-]+",
    ),
    MaskRule(name="URL", pattern=r"\b[a-zA-Z][a-zA-Z0-9+.-]{1,15}+://[^\s\"'<>()\[\]{}]+"),
    # Starts only where its run of name characters starts: a long dotted token would
    # otherwise be rescanned from every position (quadratic).
    MaskRule(name="EMAIL", pattern=r"(?<![\w.+-])[\w.+-]++@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+\b"),
    # dbt unique ids: `model.jaffle_shop.orders`, `test.jaffle_shop.not_null_orders_id.5d2b`.
    MaskRule(
        name="DBT_ID",
        pattern=(
            r"\b(?:model|test|seed|snapshot|source|exposure|metric|semantic_model|saved_query"
            r"|unit_test|analysis|operation)\.[A-Za-z_][\w-]*\.[\w.-]*\w"
        ),
    ),
    # `schema.table` and `db.schema.table` after the words databases use to name a relation
    # in their errors (`relation "analytics.orders" does not exist`); elsewhere two dotted
    # words are too often a file name (`meta_data.json`) to be masked.
    MaskRule(
        name="TABLE",
        pattern=(
            r"(?=[\"`A-Za-z_])(?i:(?<=\btable )|(?<=\brelation )|(?<=\bview ))"
            r"[\"`]?[A-Za-z_][\w$]*(?:[\"`]?\.[\"`]?[A-Za-z_][\w$]*){1,2}[\"`]?(?![\w.])"
        ),
    ),
    # Host names: three or more dotted labels ending in a lowercase top-level label
    # (`proxy.cse.cuhk.edu.hk`, `com.android.systemui`), or two with a port
    # (`tencent.com:443`). Dotted constants such as `android.intent.action.SCREEN_ON` or
    # `org.apache.Foo` end in upper case or underscores and are left alone.
    MaskRule(
        name="HOST",
        pattern=(
            r"(?<![\w.-])(?:[A-Za-z0-9-]++\.){2,}[a-z]{2,24}+(?::\d{1,5}+)?(?![\w-]|\.\w)"
            r"|(?<![\w.-])[A-Za-z0-9-]++\.[a-z]{2,24}+:\d{1,5}+(?![\w-]|\.\w)"
        ),
    ),
    # A quoted value of a key (`tag="View Lock"`): one value, however many words. Quoted
    # text elsewhere is often the message itself (`"GET /v2/… HTTP/1.1"`) and stays.
    MaskRule(name="QUOTED", pattern=r"(?<==)(?:\"[^\"\n]{0,256}\"|'[^'\n]{0,256}')"),
    # Full timestamps before dates and times, so that one value becomes one placeholder.
    MaskRule(
        name="TS",
        pattern=(
            rf"\d{{4}}[-/.]\d{{1,2}}[-/.]\d{{1,2}}(?:[T ]|, |-|:){_TIME}{_TZ}"
            rf"|(?:{_WEEKDAY},?\s+)?{_MONTH}\s+\d{{1,2}},?\s+(?:\d{{4}}\s+)?{_TIME}(?:\s+\d{{4}})?"
        ),
    ),
    MaskRule(name="UUID", pattern=r"\b[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}\b"),
    MaskRule(
        name="DATE",
        pattern=rf"{_NOT_ALNUM_BEFORE}(?:\d{{4}}[-/.]\d{{1,2}}[-/.]\d{{1,2}}|\d{{1,2}}/\d{{1,2}}/\d{{4}}){_NOT_ALNUM_AFTER}",
    ),
    MaskRule(name="MAC", pattern=r"\b(?:[0-9a-fA-F]{2}[:-]){5}[0-9a-fA-F]{2}\b"),
    # IPv4 with an optional port; IPv6 needs at least three groups to spare `a:b` pairs.
    MaskRule(
        name="IP",
        pattern=(
            rf"{_NOT_ALNUM_BEFORE}\d{{1,3}}(?:\.\d{{1,3}}){{3}}(?::\d{{1,5}})?{_NOT_ALNUM_AFTER}"
            r"|\b(?:[0-9a-fA-F]{1,4}:){3,7}[0-9a-fA-F]{1,4}\b"
        ),
    ),
    MaskRule(name="TIME", pattern=rf"{_NOT_ALNUM_BEFORE}{_TIME}{_NOT_ALNUM_AFTER}"),
    # Unix paths: rooted with two or more segments, or relative with three or more;
    # Windows paths with a drive letter or a `\\?\` / `\\server` prefix.
    MaskRule(
        name="PATH",
        pattern=(
            r"(?<![\w./-])(?:/[\w.@%+~-]++){2,}/?"
            r"|(?<![\w./-])[\w.-]++(?:/[\w.@%+~-]++){2,}/?"
            r"|(?<![\w.])(?:[A-Za-z]:|\\\\[?.]?)\\[^\s\"'<>|]+"
        ),
    ),
    # `0x1f`; written with `\d` rather than `0` so that no rule names a digit (see DIGIT_SHAPE_TABLE).
    MaskRule(name="HEX", pattern=rf"{_NOT_ALNUM_BEFORE}\d[xX][0-9a-fA-F]+{_NOT_ALNUM_AFTER}"),
    # Hashes and hex ids: long runs of hex digits holding both a digit and a letter.
    MaskRule(
        name="HASH",
        pattern=rf"{_NOT_ALNUM_BEFORE}(?=[0-9a-fA-F]*\d)(?=[0-9a-fA-F]*[a-fA-F])[0-9a-fA-F]{{7,}}+{_NOT_ALNUM_AFTER}",
    ),
    # Generated ids that are not hex: long letter-digit mixes (`jA9J1dQ7016560`).
    MaskRule(
        name="ID",
        pattern=(
            rf"{_NOT_ALNUM_BEFORE}(?=(?:[A-Za-z]*+\d){{3}})(?=\d*+[A-Za-z])[A-Za-z0-9]{{8,}}+"
            rf"{_NOT_ALNUM_AFTER}"
        ),
    ),
    MaskRule(
        name="DURATION",
        pattern=rf"{_NOT_ALNUM_BEFORE}<?{_DURATION}{_NOT_ALNUM_AFTER}",
    ),
    MaskRule(name="SIZE", pattern=rf"{_NOT_ALNUM_BEFORE}{_SIZE}{_NOT_ALNUM_AFTER}"),
    MaskRule(name="NUM", pattern=rf"{_NOT_ALNUM_BEFORE}{_NUMBER}{_NOT_ALNUM_AFTER}"),
)


@dataclass(slots=True)
class Masked:
    """A message with its values replaced by placeholders, and the values in order.
    Read-only by convention (built per message: a frozen dataclass is 3x slower to build)."""

    text: str
    names: tuple[str, ...]  # the mask name of each value
    values: tuple[str, ...]  # the original text of each value


# Every digit becomes 1. No rule names a digit, they only ask "is this a digit", so a line
# and its digit shape match at the same places, and one regex run serves every line that
# differs from another only in its numbers. The cache key is the shape of the UTF-8 bytes:
# `bytes.translate` is ten times faster than `str.translate`.
DIGIT_SHAPE_TABLE = bytes.maketrans(b"0123456789", b"1111111111")

# Where a value can start: not inside a word, and only where the first character after any
# leading ASCII letters is one some rule needs (a digit, `.`, `/`, `@`, `:`, `_`, a quote…;
# not `=`: QUOTED follows one, but starts at the quote) or any non-ASCII one (a Unicode
# letter may lead on to such a character: the rules decide), or at a month or weekday name.
# A necessary condition for every default rule (a test checks it): it spares the
# alternation at plain words, which are most of a message, and it scans only letters, so a
# long line costs linear time.
_GUARD = (
    r"(?<![A-Za-z0-9])"  # `_NOT_ALNUM_BEFORE`
    r"(?=[A-Za-z]*+[\d./\\@:_\"'`<+$\x80-\U0010ffff-]"
    r"|(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun|Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec))"
)


# Default rules that cannot match a line without some text in it, and that text. A new
# shape with none of these texts (most) gets the regex without these rules, which then
# tries fewer at every place the guard lets through (EMAIL alone costs a tenth of the
# regex's time). One variant, not one per subset: each costs milliseconds to compile.
_NEEDS = {"RUN_ID": "__", "URL": "://", "EMAIL": "@", "QUOTED": "="}  # QUOTED: `(?<==)`


class MaskPlan:
    """How to mask every line of one digit shape, found once by the regex."""

    __slots__ = ("_bounds", "_gaps", "_layout", "_values", "masked", "names")

    def __init__(self, shape: str, matches: Sequence[re.Match[str]]) -> None:
        # Built for every new shape, the cold path of intake: one loop, no second pass,
        # and nothing built that most plans never need (see `masked`).
        names: list[str] = []
        bounds: list[int] = [0]  # where each gap between values starts and ends
        parts: list[str] = []  # the shape's text in those gaps, each value's placeholder
        for match in matches:
            span = match.span()
            name = match.lastgroup or ""
            names.append(name)
            parts += (shape[bounds[-1] : span[0]], f"<{name}>")
            bounds += span
        parts.append(shape[bounds[-1] :])
        self.names = tuple(names)  # mask name of each value
        self._bounds = tuple(bounds)
        # Slicers (and `_layout`, set with `_gaps`) are built when first used.
        self._gaps: Callable[[str], tuple[str, ...]] | None = None
        self._values: Callable[[str], tuple[str, ...]] | None = None
        # A line's digits are 1s in its shape: if none is left outside the values, every
        # line of this shape masks to the same text, computed once.
        self.masked = None if "1" in "".join(parts[::2]) else "".join(parts)

    def masked_text(self, text: str) -> str:
        """The line with its values replaced by placeholders."""
        if self.masked is not None:
            return self.masked
        if self._gaps is None:
            self._layout = "{}" + "".join([f"<{name}>{{}}" for name in self.names])
            ends = [*self._bounds[1::2], None]
            self._gaps = _slicer([slice(a, b) for a, b in zip(self._bounds[::2], ends)])
        return self._layout.format(*self._gaps(text))

    def values(self, text: str) -> tuple[str, ...]:
        """The line's values, in order."""
        if self._values is None:
            spans = zip(self._bounds[1::2], self._bounds[2::2])
            self._values = _slicer([slice(a, b) for a, b in spans])
        return self._values(text)


class Masker:
    """Applies an ordered list of `MaskRule`s in one regex pass, cached per digit shape."""

    def __init__(self, rules: Sequence[MaskRule] = DEFAULT_RULES, cache_size: int = 20_000):
        self.rules = tuple(rules)
        names = [rule.name for rule in self.rules]
        if len(set(names)) != len(names):
            raise ValueError(f"mask names must be unique: {names}")
        default = self.rules == DEFAULT_RULES
        # The guard holds for the default rules only; others get the plain word-start guard.
        self._guard = _GUARD if default else _NOT_ALNUM_BEFORE
        self._regex = self._combined()
        self._needs = tuple(_NEEDS.values()) if default else ()
        self._lean = self._combined(frozenset(_NEEDS)) if default else self._regex
        self._cache_size = cache_size
        # A rule that names a digit (`port 22`) would break the shape cache.
        self._cached = cache_size > 0 and all(_digit_blind(rule.pattern) for rule in self.rules)
        self._plans: dict[bytes, MaskPlan] = {}

    def _combined(self, without: frozenset[str] = frozenset()) -> re.Pattern[str]:
        """The guard, then every rule but those named in `without`, as named alternatives
        so that `lastgroup` tells which rule matched."""
        # A rule's own leading `_NOT_ALNUM_BEFORE` asks what the guard just asked, at the
        # same position: once is enough, at every position the alternation is tried.
        alternatives = "|".join(
            f"(?P<{rule.name}>{rule.pattern.removeprefix(_NOT_ALNUM_BEFORE)})"
            for rule in self.rules
            if rule.name not in without
        )
        return re.compile(f"{self._guard}(?:{alternatives})")

    def _matches(self, text: str) -> list[re.Match[str]]:
        """The values in `text`, by the lean regex if `text` has none of `_NEEDS`' texts."""
        lean = not any(map(text.__contains__, self._needs))
        return list((self._lean if lean else self._regex).finditer(text))

    def mask(self, text: str) -> str:
        """The text with every value replaced by its placeholder."""
        return self.plan(text).masked_text(text)

    def mask_with_values(self, text: str) -> Masked:
        """The masked text and what each placeholder stood for."""
        plan = self.plan(text)
        return Masked(plan.masked_text(text), plan.names, plan.values(text))

    @property
    def by_shape(self) -> bool:
        """True if lines of one `digit_shape` share a plan (the rules never name a digit)."""
        return self._cached

    def plan(self, text: str) -> MaskPlan:
        """The plan for this line: from the cache when a line of its digit shape was seen."""
        if not self._cached:
            return MaskPlan(text, self._matches(text))
        key = digit_shape(text)
        plan = self._plans.get(key)
        if plan is None:
            plan = self.shape_plan(key)
            if len(self._plans) >= self._cache_size:
                del self._plans[next(iter(self._plans))]  # oldest first
            self._plans[key] = plan
        return plan

    def shape_plan(self, shape: bytes) -> MaskPlan:
        """The plan for every line of this `digit_shape`, built afresh: for a caller that
        keeps its own cache per shape (valid only if `by_shape`)."""
        text = shape.decode("utf-8", "surrogatepass")  # the line with every digit a 1
        return MaskPlan(text, self._matches(text))


def digit_shape(text: str) -> bytes:
    """The line's UTF-8 bytes with every digit a 1: the key of the plan cache."""
    return text.encode("utf-8", "surrogatepass").translate(DIGIT_SHAPE_TABLE)


def _slicer(slices: list[slice]) -> Callable[[str], tuple[str, ...]]:
    """A C-speed function returning these slices of a string, always as a tuple."""
    if len(slices) == 1:
        only = slices[0]
        return lambda text: (text[only],)
    return itemgetter(*slices) if slices else _no_values


def _no_values(text: str) -> tuple[str, ...]:
    return ()


def _digit_blind(pattern: str) -> bool:
    """True if a rule cannot tell digits apart: no literal digit outside `{m,n}` and `0-9`."""
    stripped = re.sub(r"\\.|\{\d*,?\d*\}|0-9", "", pattern)
    return re.search(r"[0-9]", stripped) is None
