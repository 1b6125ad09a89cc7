"""The investigation report: what a human reads at the end of a thread, and what a model submits.

A model fills `Report` through a tool call; validation errors go back to it verbatim, so every
validator's message says what to change (`feedback()` turns a ValidationError into those lines).
The severity scale and root-cause categories are canonical here: the demo platform's ground
truth (`bot/demo/truth.py`) should import them rather than keep its own copy.
"""

from __future__ import annotations

import re
from typing import Any, Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    computed_field,
    field_validator,
    model_validator,
)

KnownCategory = Literal[
    "schema_change",    # upstream columns renamed, dropped or re-typed
    "semantic_change",  # same schema, different meaning (units, codes)
    "data_quality",     # bad values from upstream (nulls, out of range)
    "duplicate_data",   # the same records delivered or loaded twice
    "freshness",        # data late or missing
    "code_change",      # a commit to the pipeline's code
    "config_change",    # a commit to the pipeline's configuration
    "infrastructure",   # the platform itself (memory, timeouts)
    "transient",        # a blip that recovered on its own: noise
]
# What a report may say; "unknown" when the evidence does not settle it (say what to check next).
Category = Literal[KnownCategory, "unknown"]
CATEGORIES: tuple[str, ...] = get_args(Category)

Severity = Literal["SEV1", "SEV2", "SEV3", "SEV4"]
SEVERITY_CRITERIA: dict[str, str] = {
    "SEV1": "Wrong numbers reach a consumer (dashboard, export) without any check failing.",
    "SEV2": "A consumer is stale or blocked: the pipeline stopped before publishing.",
    "SEV3": "A check caught bad data in a limited part of the warehouse; consumers unaffected.",
    "SEV4": "No consumer impact: noise, or a blip that recovered on retry.",
}

CitationKind = Literal["sql", "log", "code", "metric", "artifact", "memory", "map"]
# What a reference looks like, per kind: the pattern and the example a model is shown.
REFERENCE_FORMATS: dict[str, tuple[str, str]] = {
    "sql": (r"sql:\S+", "sql:<query id>"),
    "log": (r"\S+#L\d+(-L\d+)?", "logs/<dag>/<task>/attempt=1.log#L40-L52"),
    "code": (r"[^@\s]+@[0-9a-f]{7,40}(#L\d+(-L\d+)?)?", "models/fct_orders.sql@1a2b3c4#L10-L20"),
    "metric": (r"metric:[A-Za-z_:][\w:]*(\{[^}]*\})?@\S+\.\.\S+",
               "metric:<name>{label=\"v\"}@<from>..<to>"),
    "artifact": (r"\S+", "target/run_results.json#model.shop.fct_orders"),
    "memory": (r"memory:\S+", "memory:<issue id>"),
    "map": (r"map:\S+", "map:<node id>"),
}
_REFERENCE_RE = {kind: re.compile(pattern) for kind, (pattern, _) in REFERENCE_FORMATS.items()}

MAX_EXCERPT = 600
CONFIDENCE_LABELS = ((0.4, "low"), (0.75, "medium"), (1.0, "high"))  # upper bounds, exclusive
MAX_UNKNOWN_CONFIDENCE = 0.5


def confidence_label(confidence: float) -> str:
    return next((label for bound, label in CONFIDENCE_LABELS if confidence < bound), "high")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Citation(_Model):
    """Where a claim can be checked."""

    kind: CitationKind
    reference: str = Field(description="; ".join(f"{k}: {ex}" for k, (_, ex) in
                                                 REFERENCE_FORMATS.items()))
    excerpt: str = Field("", description=f"The lines that matter, at most {MAX_EXCERPT} chars.")

    @model_validator(mode="after")
    def _reference_fits_kind(self) -> Citation:
        if not _REFERENCE_RE[self.kind].fullmatch(self.reference):
            example = REFERENCE_FORMATS[self.kind][1]
            raise ValueError(f"a {self.kind} citation's reference looks like {example!r}, "
                             f"got {self.reference!r}")
        return self

    @field_validator("excerpt")
    @classmethod
    def _short_excerpt(cls, excerpt: str) -> str:
        if len(excerpt) > MAX_EXCERPT:
            raise ValueError(f"excerpt is {len(excerpt)} characters; quote at most "
                             f"{MAX_EXCERPT}, only the lines that matter")
        return excerpt


class Claim(_Model):
    """One statement of fact, with where it can be checked."""

    text: str = Field(min_length=1)
    citations: list[Citation] = Field(description="At least one: an uncited claim is no evidence.")

    @field_validator("citations")
    @classmethod
    def _cited(cls, citations: list[Citation]) -> list[Citation]:
        if not citations:
            raise ValueError("cite at least one source for this claim, or drop the claim")
        return citations


class RootCause(_Model):
    node: str | None = Field(description="Asset id where it started (dbt unique id or "
                                         "task.<dag>.<task>); null when unknown.")
    category: Category
    explanation: str = Field(min_length=1, description="How the cause produced the symptoms.")


class RejectedHypothesis(_Model):
    hypothesis: str = Field(min_length=1)
    why: str = Field(min_length=1, description="The evidence against it.")


class CodeChange(_Model):
    needed: bool
    sketch: str | None = Field(None, description="The change in a few lines or a diff.")
    files: list[str] = Field(default_factory=list, description="Paths the change touches.")

    @model_validator(mode="after")
    def _sketched(self) -> CodeChange:
        if self.needed and not (self.sketch and self.files):
            raise ValueError("a needed code change must give a sketch and the files it touches")
        return self


class Report(_Model):
    """The end of an investigation."""

    title: str = Field(min_length=1, max_length=120, description="One line, under 120 chars.")
    summary: str = Field(min_length=1, description="Two or three sentences for the channel.")
    what_happened: str = Field(min_length=1, description="The sequence of events, in order.")
    impacted_assets: list[str] = Field(default_factory=list, description="Asset ids affected.")
    severity: Severity = Field(description="; ".join(f"{k}: {v}" for k, v in
                                                     SEVERITY_CRITERIA.items()))
    root_cause: RootCause
    confidence: float = Field(ge=0, le=1, description="0..1; 'unknown' root causes stay <= 0.5.")
    evidence: list[Claim] = Field(default_factory=list)
    rejected_hypotheses: list[RejectedHypothesis] = Field(default_factory=list)
    ruled_out: list[str] = Field(default_factory=list, description="Checked and found fine.")
    next_checks: list[str] = Field(default_factory=list,
                                   description="What a human should check next; required when "
                                               "the root cause is unknown.")
    fix_steps: list[str] = Field(default_factory=list)
    prevention: list[str] = Field(default_factory=list)
    code_change: CodeChange = CodeChange(needed=False)
    produced_by: str = Field(min_length=1,
                             description="'offline policy' or the model's name.")
    limits_hit: str | None = Field(None, description="The guardrail that ended the "
                                                     "investigation (step limit, token budget…).")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def confidence_label(self) -> str:
        return confidence_label(self.confidence)

    @model_validator(mode="before")
    @classmethod
    def _drop_derived(cls, data: Any) -> Any:
        # A dumped report carries its label; it is derived, so reading it back ignores it.
        if isinstance(data, dict) and "confidence_label" in data:
            data = {k: v for k, v in data.items() if k != "confidence_label"}
        return data

    @field_validator("impacted_assets")
    @classmethod
    def _distinct_assets(cls, assets: list[str]) -> list[str]:
        if any(not a.strip() or " " in a.strip() for a in assets):
            raise ValueError("impacted_assets holds asset ids (no spaces), e.g. "
                             "'model.shop.fct_orders'; put prose in what_happened")
        return list(dict.fromkeys(a.strip() for a in assets))

    @model_validator(mode="after")
    def _consistent(self) -> Report:
        unknown = self.root_cause.category == "unknown" or self.root_cause.node is None
        problems = []
        if unknown and not self.next_checks:
            problems.append("the root cause is unknown: list next_checks, what a human "
                            "should look at next")
        if unknown and self.confidence > MAX_UNKNOWN_CONFIDENCE:
            problems.append(f"the root cause is unknown, so confidence must be at most "
                            f"{MAX_UNKNOWN_CONFIDENCE}; lower it or name the root cause")
        if not unknown and not self.evidence:
            problems.append("a named root cause needs evidence: at least one claim with a "
                            "citation; or set root_cause.category to 'unknown'")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def citations(self) -> list[Citation]:
        return [c for claim in self.evidence for c in claim.citations]

    def to_markdown(self, level: int = 1) -> str:
        """The report for humans (the Slack thread, the case file); `level`: its title's depth."""
        rc = self.root_cause
        h = "#" * level
        lines = [
            f"{h} {self.title}",
            "",
            f"**{self.severity}** ({SEVERITY_CRITERIA[self.severity]}) · confidence "
            f"**{self.confidence_label}** ({self.confidence:.2f}) · produced by "
            f"{self.produced_by}"
            + (f" · stopped by {self.limits_hit}" if self.limits_hit else ""),
            "",
            self.summary,
            "",
            f"{h}# What happened",
            self.what_happened,
            "",
            f"{h}# Root cause",
            f"`{rc.node or 'unknown'}` · {rc.category.replace('_', ' ')}: {rc.explanation}",
        ]
        if self.impacted_assets:
            lines += ["", f"{h}# Impacted assets", *(f"- `{a}`" for a in self.impacted_assets)]
        if self.evidence:
            lines += ["", f"{h}# Evidence"]
            for i, claim in enumerate(self.evidence, 1):
                lines.append(f"{i}. {claim.text}")
                for c in claim.citations:
                    lines.append(f"   - {c.kind}: `{c.reference}`")
                    if c.excerpt:
                        lines += [f"     > {line}" for line in c.excerpt.splitlines()]
        lines += _section(f"{h}# Rejected hypotheses",
                          [f"{r.hypothesis}: {r.why}" for r in self.rejected_hypotheses])
        lines += _section(f"{h}# Ruled out", self.ruled_out)
        lines += _section(f"{h}# Next checks", self.next_checks)
        lines += _section(f"{h}# Fix", self.fix_steps, numbered=True)
        lines += _section(f"{h}# Prevention", self.prevention)
        if self.code_change.needed:
            lines += ["", f"{h}# Code change", "Files: " + ", ".join(
                f"`{f}`" for f in self.code_change.files), "", "```",
                self.code_change.sketch or "", "```"]
        return "\n".join(lines) + "\n"


def _section(heading: str, items: list[str], numbered: bool = False) -> list[str]:
    if not items:
        return []
    return ["", heading, *((f"{i}. " if numbered else "- ") + item
                                  for i, item in enumerate(items, 1))]


def feedback(error: ValidationError) -> str:
    """A ValidationError as lines a model can act on: `field.path: message`."""
    lines = []
    for e in error.errors(include_url=False):
        where = ".".join(str(p) for p in e["loc"]) or "report"
        message = e["msg"].removeprefix("Value error, ")
        lines.append(f"{where}: {message}")
    return "\n".join(lines)
