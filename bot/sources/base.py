"""What every source connector offers the scheduler: a name, a poll and a prerequisite check.

A poll takes the cursor the previous poll returned (as stored: plain JSON data, or None on
the first poll) and returns the new signals and the next cursor, a pydantic model the
scheduler stores with `model_dump(mode="json")`. A source never raises for one bad file,
page or row: it skips it with a logged warning and reads it again at the next poll. A
source that cannot read at all for a passing reason (the warehouse locked by the pipeline
writing it) raises `SourceBusy`: the poll is skipped, not failed (see the scheduler).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel

from bot.intake.signals import RawSignal

C = TypeVar("C", bound=BaseModel)


class SourceBusy(Exception):
    """This poll cannot read now, for a reason that passes by itself (another process holds
    the warehouse's lock while it writes). Nothing was read, so nothing is found or lost: the
    scheduler keeps the cursor, says so once, polls again on schedule, and reports the source
    as failing only if it stays busy for long. The text is that one line, for people."""


class Source(Protocol):
    name: str

    def poll(self, cursor: Any = None) -> tuple[list[RawSignal], BaseModel]:
        """New signals since `cursor` and the cursor to keep."""
        ...

    def check(self) -> list[str]:
        """What stops this source from working, one sentence each; empty when it is ready."""
        ...


def as_cursor(model: type[C], cursor: C | Mapping[str, Any] | None) -> C:
    """The typed cursor from what the scheduler stored (or the empty one on a first poll)."""
    if isinstance(cursor, model):
        return cursor
    return model.model_validate(cursor or {})
