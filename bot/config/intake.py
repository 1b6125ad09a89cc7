"""Between sources and issues: the noise filter's rules and classifier, grouping, and
each source's polling schedule."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger
from pydantic import Field, field_validator, model_validator

from bot.config.base import Duration, _Strict
from bot.intake.signals import SignalKind

_CRON_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_CRON_DAY_ITEM = re.compile(r"^(\*|\w+)(?:-(\w+))?(?:/(\d+))?$")


def crontab_trigger(expr: str, timezone: str) -> CronTrigger:
    """A standard 5-field crontab as an APScheduler trigger.

    APScheduler 3 reads day-of-week numbers with 0 = Monday; crontab means 0 (and 7) =
    Sunday. The day field is rewritten as day names so `0 3 * * 0` fires on Sundays.
    """
    fields = expr.split()
    if len(fields) == 5 and fields[4] != "*":
        fields[4] = ",".join(_cron_days(item) for item in fields[4].split(","))
    return CronTrigger.from_crontab(" ".join(fields), timezone=timezone)


def _cron_days(item: str) -> str:
    match = _CRON_DAY_ITEM.match(item.lower())
    if match is None:
        raise ValueError(f"day of week {item!r} is not a day, range or step")
    first, last, step = match.groups()
    if first == "*":
        days = range(0, 7, int(step or 1))
    else:
        lo, hi = _cron_day(first), _cron_day(last) if last else None
        if hi == 0 and lo > 0:
            hi = 7  # `sat-sun`, `5-0`: Sunday closes the week
        if hi is None and step:
            hi = 7
        days = range(lo, (hi if hi is not None else lo) + 1, int(step or 1))
    if not days:
        raise ValueError(f"day-of-week range {item!r} is empty")
    return ",".join(dict.fromkeys(_CRON_DAYS[d % 7] for d in days))


def _cron_day(token: str) -> int:
    if token.isdigit() and int(token) <= 7:
        return int(token)
    if token[:3] in _CRON_DAYS:
        return _CRON_DAYS.index(token[:3])
    raise ValueError(f"day of week {token!r} is not 0-7 or a day name")


class SignalScope(_Strict):
    """Which signals a rule applies to; a field left out matches everything."""

    kinds: list[SignalKind] | None = Field(None, description="Signal kinds, e.g. [log_error].")
    sources: list[str] | None = Field(
        None, description="Glob patterns on the source's name, e.g. ['logs:*']."
    )
    assets: list[str] | None = Field(
        None, description="Glob patterns on the asset, e.g. ['task.daily_warehouse.load_*']."
    )


class BenignPattern(SignalScope):
    """A known-harmless message: signals it matches are dropped with this rule's reason."""

    name: str = Field(min_length=1, description="Short name; the drop's rule is `benign:<name>`.")
    regex: str = Field(
        description="Searched in the title, detail.message, detail.exception and "
        "detail.template_text (Python syntax, case-sensitive unless it says (?i))."
    )
    reason: str = Field(
        min_length=1, description="Why it is harmless, shown with every signal it drops."
    )
    expires: date | None = Field(
        None,
        description="Last day (UTC) the rule applies; after it the rule stops dropping and "
        "`config check` says so. A rule that lives forever hides the day it stops being true.",
    )

    @field_validator("regex")
    @classmethod
    def _valid_regex(cls, pattern: str) -> str:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"a valid regular expression ({exc})") from exc
        return pattern


class MaintenanceWindow(SignalScope):
    """A planned window (fixed, or recurring by cron) when matching signals are expected."""

    name: str = Field(min_length=1, description="Short name; the drop's rule is "
                                                "`maintenance:<name>`.")
    start: datetime | None = Field(None, description="A one-off window's start, with offset.")
    end: datetime | None = Field(None, description="A one-off window's end (exclusive).")
    cron: str | None = Field(
        None, description="A recurring window's start, 5-field crontab, e.g. '0 3 * * SUN'."
    )
    duration: Duration | None = Field(
        None, description="A recurring window's length (elapsed time, e.g. 2h)."
    )
    timezone: str = Field("UTC", description="IANA zone the cron expression is read in.")

    @field_validator("timezone")
    @classmethod
    def _valid_zone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError("an IANA time zone such as UTC or Europe/Berlin") from exc
        return name

    @model_validator(mode="after")
    def _one_form(self) -> MaintenanceWindow:
        fixed, recurring = (self.start, self.end), (self.cron, self.duration)
        if all(v is not None for v in fixed) == all(v is not None for v in recurring) or (
            any(v is not None for v in fixed) and any(v is not None for v in recurring)
        ):
            raise ValueError("either start and end, or cron and duration")
        if self.start is not None and self.end is not None:
            if self.start.tzinfo is None or self.end.tzinfo is None:
                raise ValueError("start and end with a UTC offset, e.g. 2026-11-21T02:00:00+00:00")
            if self.end <= self.start:
                raise ValueError("an end after the start")
        if self.cron is not None:
            try:
                self.trigger()
            except ValueError as exc:
                raise ValueError(f"a 5-field crontab expression ({exc})") from exc
            if self.duration is not None and self.duration <= timedelta(0):
                raise ValueError("a positive duration")
        return self

    def trigger(self) -> CronTrigger:
        """The recurring window's starts (only for a window with `cron`)."""
        assert self.cron is not None
        return crontab_trigger(self.cron, self.timezone)


class ClassifierConfig(_Strict):
    """The cheap model that judges what the rules leave undecided (needs GEMINI_API_KEY)."""

    enabled: bool = Field(False, description="Ask the model about signals no rule decided.")
    threshold: float = Field(
        0.8, ge=0.5, le=1.0, description="Drop only when the model says noise this confidently."
    )
    excluded_kinds: list[SignalKind] = Field(
        ["task_failed", "model_error", "test_failed"],
        description="Never asked about, always kept: final outcomes the team declared blocking "
        "(a task failed after its retries, a model did not build, an error-severity test).",
    )


class NoiseConfig(_Strict):
    """The noise filter's rules, tried in order: maintenance, benign, flaky tries, classifier."""

    maintenance: list[MaintenanceWindow] = Field(default_factory=list)
    benign: list[BenignPattern] = Field(
        default_factory=list,
        description="Known-harmless messages. None by default: the demo's only noise is a "
        "flaky try, which the flaky rule drops.",
    )
    flaky_window: Duration = Field(
        timedelta(hours=2),
        description="A failed try whose task succeeds within this long is flaky; until then "
        "its signals are held.",
    )
    recheck_every: Duration = Field(
        timedelta(minutes=5), description="How soon a held signal is decided again."
    )
    classifier: ClassifierConfig = ClassifierConfig()


class GroupingConfig(_Strict):
    """How kept signals become one issue per root problem (see bot/intake/grouping.py)."""

    # 0.9: on the demo scenarios' issue texts, signals of different root problems reach 0.87
    # (same metric, other direction; one wrapper exception on two tasks): `bench grouping`.
    similarity_threshold: float = Field(
        0.9, ge=0, le=1, description="Cosine similarity at which a signal joins an open "
                                     "issue whose text it nearly repeats.")
    lineage_window: Duration = Field(
        timedelta(hours=12), description="A symptom joins an issue upstream of it if that "
                                         "issue was seen within this long.")
    default_channel: str = Field(
        "#data-alerts", description="Where issues go when no dbt meta names an owner.")


class ScheduleConfig(_Strict):
    """How often each source is polled; `sleuth run` polls them all on these intervals."""

    default: Duration = Field(
        timedelta(minutes=1), description="Interval of every source not named below.")
    sources: dict[str, Duration] = Field(
        default_factory=dict, description="Per source name (dbt, logs:airflow, …): interval.")
    backoff_first: Duration = Field(
        timedelta(minutes=1), description="First wait after a failed poll; doubles each time.")
    backoff_longest: Duration = Field(
        timedelta(hours=1), description="Longest wait between polls of a failing source.")

    def interval(self, source: str) -> timedelta:
        return self.sources.get(source, self.default)


class IntakeConfig(_Strict):
    """What happens to signals between the sources and the issues."""

    noise: NoiseConfig = NoiseConfig()
    grouping: GroupingConfig = GroupingConfig()
    schedule: ScheduleConfig = ScheduleConfig()
