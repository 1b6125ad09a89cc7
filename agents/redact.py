"""Secret redaction for everything that leaves an investigation: prompts, trace, case file, report.

A secret becomes a marker naming its kind, `[REDACTED:aws_access_key]`, so a reader (human or
model) still knows what stood there. Two families of rules:

- *shaped* secrets, recognisable on their own: cloud and SaaS keys with a fixed prefix, JWTs,
  PEM private keys, Slack webhook URLs;
- *contextual* secrets, recognisable by what stands before them: `password=…`, `"token": "…"`,
  `Authorization: Bearer …`, the password of `scheme://user:PASSWORD@host`. Only the value is
  replaced; the key, user and host stay, since they are what a human debugs with.

The rules run in ONE pass as a combined alternation (at the leftmost position the first rule
that matches wins), as `bot.intake.masking` does, but only over windows around a trigger
literal (see `_TRIGGERS`): most text holds no secret and is skipped at `str.find` speed.
Ordinary ids must survive: UUIDs, git shas, dbt unique ids, Airflow run ids. So no rule
matches "a long random-looking string" by itself: a bare 40-character value is only a secret
after a secret-ish key.

Exact known values (the app's own configured secrets) are replaced wherever they appear,
shaped or not; values shorter than `MIN_KNOWN_LEN` are ignored, or a weak password like
`airflow` would erase every path holding that word (its contextual uses are still caught).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from functools import lru_cache
from typing import Any

from pydantic import BaseModel

MIN_KNOWN_LEN = 8


def marker(kind: str) -> str:
    return f"[REDACTED:{kind}]"


# Shaped secrets: (kind, regex of the whole secret). Order matters where prefixes overlap
# (sk-ant- before sk-). Each starts where a token can start and ends where it must end.
_SHAPED: tuple[tuple[str, str], ...] = (
    ("private_key",  # PEM blocks, raw or JSON-escaped (`\n`); a cut-off block to the end
     r"-----BEGIN[A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END[A-Z ]*PRIVATE KEY-----|\Z)"),
    ("slack_webhook",
     r"https://hooks\.slack(?:-gov)?\.com/(?:services|workflows|triggers)/[A-Za-z0-9/_-]+"),
    ("slack_token", r"(?<![\w-])(?:xox[abposre](?:\.xox[abp])?-|xapp-)[A-Za-z0-9-]{8,}"),
    ("anthropic_key", r"(?<![\w-])sk-ant-[A-Za-z0-9_-]{20,}"),
    # OpenAI-style: `sk-` + 20 or more, with a digit so `sk-customer-dimension-…` is no key.
    ("openai_key", r"(?<![\w-])sk-(?=[A-Za-z0-9_-]*\d)[A-Za-z0-9_-]{20,}"),
    ("google_api_key", r"(?<![\w-])AIza[0-9A-Za-z_-]{35}(?![\w-])"),
    ("github_token",
     r"(?<![\w-])(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})"),
    ("aws_access_key", r"(?<![A-Za-z0-9])(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}(?![A-Za-z0-9])"),
    ("jwt", r"(?<![\w-])eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{10,}"),
)

# Keys whose value is a secret, matched at the END of a key name (`DB_PASSWORD`,
# `spring.datasource.password`, `"client_secret"`), case-insensitive. `max_tokens=` and
# `secret_name=` don't match: the separator must follow the keyword directly.
_KEYWORDS: dict[str, str] = {
    "password": "password", "passwd": "password", "passphrase": "password",
    "secret": "secret", "secretkey": "secret",
    "token": "token",
    "apikey": "api_key",
    "privatekeyid": "private_key", "privatekey": "private_key",
    "secretaccesskey": "aws_secret_key",
    "accesskey": "access_key",
    "accountkey": "azure_key", "sharedaccesskey": "azure_key",
    "signature": "signature",
}
_KEYWORD_RE = "|".join(  # `secret_access_key`, `secret-access-key`, `SecretAccessKey`
    "[_-]?".join(re.findall("password|passwd|passphrase|secret|token|api|private|key|id|access|account"
                            "|shared|signature", kw))
    for kw in sorted(_KEYWORDS, key=len, reverse=True)
)
_SEP = r"""["']?[ \t]*[:=][ \t]*"""
_VALUE = r"""(?:\$\{[^}\s]*\}|"[^"\n]*"|'[^'\n]*'|[^\s,;&"'(){}\[\]<>]+)"""
# Values that are references or already hidden, not secrets.
_NOT_A_SECRET = re.compile(
    r"""["']?(?:\$\{[^}]*\}|\$[A-Z_]+|<[^>]*>|\*+|\[REDACTED[^\]]*\]"""
    r"""|none|null|nil|true|false|)["']?""",
    re.IGNORECASE,
)

# Contextual secrets: (kind, regex with groups `pre`, `val`). `kind` None: by keyword.
_CONTEXTUAL: tuple[tuple[str | None, str], ...] = (
    ("password",
     r"(?P<pre>\b[a-zA-Z][a-zA-Z0-9+.-]{1,15}://[^\s:/@\"'<>]+:)(?P<val>[^\s@/\"'<>]+)(?=@)"),
    ("authorization",
     r"(?P<pre>(?<![\w-])(?i:authorization)[\"']?[ \t]*[:=][ \t]*[\"']?(?:[A-Za-z-]+[ \t]+)?)"
     r"(?P<val>[^\s\"',;]+)"),
    ("bearer_token",
     r"(?P<pre>\b(?i:bearer)[ \t]+)(?P<val>(?=[A-Za-z0-9._~+/-]*\d)[A-Za-z0-9._~+/-]{16,}=*)"),
    ("azure_sas", r"(?P<pre>(?<=[?&;])sig=)(?P<val>[A-Za-z0-9%+/=]{16,})"),
    # The key's own prefix (`DB_`) stays outside the match: scanning it would cost a pass per
    # character of every word.
    (None, rf"(?P<pre>(?i:(?P<kw>{_KEYWORD_RE})){_SEP})(?P<val>{_VALUE})"),
)


class Redactor:
    """Compiled rules plus a set of exact known secret values; `text()` and `data()` apply them."""

    def __init__(self, known: Iterable[str] = ()) -> None:
        self._known = sorted({v for v in known if len(v) >= MIN_KNOWN_LEN}, key=len, reverse=True)
        branches: list[str] = []
        self._handlers: dict[str, Callable[[re.Match[str]], str]] = {}
        for i, (kind, pattern) in enumerate(_SHAPED):
            self._add(branches, f"s{i}", pattern, self._whole(kind))
        for i, (kind, pattern) in enumerate(_CONTEXTUAL):
            name = f"c{i}"
            pattern = re.sub(r"\(\?P<(pre|val|kw)>", lambda m: f"(?P<{name}_{m[1]}>", pattern)
            self._add(branches, name, pattern, self._contextual(name, kind))
        self._pattern = re.compile("|".join(branches))

    def _add(self, branches: list[str], name: str, pattern: str,
             handler: Callable[[re.Match[str]], str]) -> None:
        branches.append(f"(?P<{name}>{pattern})")
        self._handlers[name] = handler

    @staticmethod
    def _whole(kind: str) -> Callable[[re.Match[str]], str]:
        return lambda m: marker(kind)

    def _contextual(self, name: str, kind: str | None) -> Callable[[re.Match[str]], str]:
        def handle(m: re.Match[str]) -> str:
            pre, val = m[f"{name}_pre"], m[f"{name}_val"]
            if _NOT_A_SECRET.fullmatch(val):
                return m[0]
            quote = val[0] if val[0] in "\"'" and len(val) > 1 and val[-1] == val[0] else ""
            inner = val[1:-1] if quote else val
            value_kind = _shaped_kind(inner) or kind or _KEYWORDS[_norm(m[f"{name}_kw"])]
            return f"{pre}{quote}{marker(value_kind)}{quote}"
        return handle

    def text(self, text: str) -> str:
        """`text` with every secret replaced by its marker."""
        for value in self._known:
            text = text.replace(value, marker("known_secret"))
        if "-----BEGIN" in text:  # the one multi-line kind, done first over the whole text
            text = _PEM.sub(marker("private_key"), text)
        out: list[str] = []
        done = 0
        for start, end in _candidate_spans(text):
            out += [text[done:start], self._pattern.sub(self._replace, text[start:end])]
            done = end
        return "".join(out) + text[done:] if out else text

    def _replace(self, m: re.Match[str]) -> str:
        return self._handlers[m.lastgroup](m)  # type: ignore[index]

    def data(self, obj: Any) -> Any:
        """`obj` with secrets replaced in every string: dicts (keys and values), lists, tuples,
        sets, pydantic models (a copy, same type). A string under a secret-ish dict key
        (`{"password": "x"}`) is replaced whole, since it has no context of its own."""
        if isinstance(obj, str):
            return self.text(obj)
        if isinstance(obj, dict):
            return {self.data(k): self._value_under(k, v) for k, v in obj.items()}
        if isinstance(obj, (list, tuple, set, frozenset)):
            return type(obj)(self.data(v) for v in obj)
        if isinstance(obj, BaseModel):
            update = {f: self._value_under(f, getattr(obj, f)) for f in type(obj).model_fields}
            return obj.model_copy(update=update)
        return obj

    def _value_under(self, key: Any, value: Any) -> Any:
        if isinstance(key, str) and isinstance(value, (str, int)) and not isinstance(value, bool):
            kw = _SECRET_KEY.fullmatch(key)
            if kw and not _NOT_A_SECRET.fullmatch(str(value)):
                return marker(_shaped_kind(str(value)) or _KEYWORDS[_norm(kw["kw"])])
        return self.data(value)


# The combined pass costs about 2 s per MB, since every rule is tried at every position. So it
# runs only on windows around a trigger: a literal that every rule's match contains, found by
# `str.find` (memchr speed) in an ASCII-lowercased copy (same length, same offsets). A window
# reaches from whitespace to whitespace, and no single-line secret holds whitespace (quoted
# values aside, which sit right after their trigger).
_TRIGGERS = (
    "xox", "xapp-", "sk-", "aiza", "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_",
    "akia", "asia", "abia", "acca", "eyj", "://", "sig=", "authorization", "bearer",
    "passw", "passphrase", "secret", "token", "key", "signature",
)
_BEFORE, _AFTER = 64, 256  # window around a trigger, widened to whitespace
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_PEM = re.compile(_SHAPED[0][1])


def _candidate_spans(text: str) -> list[tuple[int, int]]:
    lowered = text.translate(_ASCII_LOWER)
    hits: list[int] = []
    for trigger in _TRIGGERS:
        at = lowered.find(trigger)
        while at >= 0:
            hits.append(at)
            at = lowered.find(trigger, at + 1)
    spans: list[tuple[int, int]] = []
    for hit in sorted(hits):
        if spans and hit < spans[-1][1]:
            continue
        start = max(_whitespace_before(text, hit - _BEFORE), spans[-1][1] if spans else 0)
        end = _whitespace_after(text, hit + _AFTER)
        spans.append((start, end))
    return spans


def _whitespace_before(text: str, pos: int) -> int:
    if pos <= 0:
        return 0
    return max(text.rfind(ws, 0, pos) for ws in (" ", "\n", "\t")) + 1


def _whitespace_after(text: str, pos: int) -> int:
    if pos >= len(text):
        return len(text)
    found = [at for ws in (" ", "\n", "\t") if (at := text.find(ws, pos)) >= 0]
    return min(found, default=len(text))


_SHAPED_FULL = [(kind, re.compile(pattern)) for kind, pattern in _SHAPED]
_SECRET_KEY = re.compile(rf"[\w.-]*?(?i:(?P<kw>{_KEYWORD_RE}))")


def _shaped_kind(value: str) -> str | None:
    return next((kind for kind, rx in _SHAPED_FULL if rx.fullmatch(value)), None)


def _norm(keyword: str) -> str:
    return keyword.lower().replace("_", "").replace("-", "")


@lru_cache(maxsize=8)
def _redactor(known: frozenset[str]) -> Redactor:
    return Redactor(known)


def redact(text: str, known: Iterable[str] = ()) -> str:
    """`text` with secrets replaced by `[REDACTED:<kind>]`; `known`: values always replaced."""
    return _redactor(frozenset(known)).text(text)


def redact_data(obj: Any, known: Iterable[str] = ()) -> Any:
    """`redact` over every string inside dicts, lists, tuples, sets and pydantic models."""
    return _redactor(frozenset(known)).data(obj)
