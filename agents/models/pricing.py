"""What tokens cost, and where an investigation spent them (per step, per tool, per model)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping

from pydantic import BaseModel

from agents.models.config import ModelPrice
from agents.models.protocol import Completion, Usage

log = logging.getLogger(__name__)
_MILLION = 1_000_000


class PriceTable:
    """Looks a model up by exact id, else by the longest priced id it starts with (so a
    dated snapshot such as `claude-sonnet-5-5-20261001` takes its family's price).

    Unknown model → cost 0 and one warning per model: spend is then under-reported, never
    a crash in the middle of an investigation.
    """

    def __init__(self, prices: Mapping[str, ModelPrice]):
        self._prices = dict(prices)
        self._warned: set[str] = set()

    def price(self, model: str) -> ModelPrice | None:
        if model in self._prices:
            return self._prices[model]
        prefixes = [name for name in self._prices if model.startswith(name)]
        return self._prices[max(prefixes, key=len)] if prefixes else None

    def cost(self, usage: Usage, model: str) -> float:
        """USD for `usage` on `model`."""
        price = self.price(model)
        if price is None:
            if model not in self._warned:
                self._warned.add(model)
                log.warning("no price for model %r: its calls count as $0 (add it to "
                            "models.prices in sleuth.yaml)", model)
            return 0.0
        return (usage.input_tokens * price.input + usage.output_tokens * price.output
                + usage.cache_read_tokens * price.cache_read
                + usage.cache_write_tokens * price.cache_write) / _MILLION


class SpendLine(BaseModel):
    calls: int = 0
    usage: Usage = Usage()
    cost_usd: float = 0.0

    def plus(self, usage: Usage, cost_usd: float, calls: int = 1) -> SpendLine:
        return SpendLine(calls=self.calls + calls, usage=self.usage + usage,
                         cost_usd=self.cost_usd + cost_usd)


class SpendReport(BaseModel):
    """A snapshot of a Spend, for the case file and the report footer."""

    total: SpendLine = SpendLine()
    by_step: dict[str, SpendLine] = {}
    by_tool: dict[str, SpendLine] = {}
    by_model: dict[str, SpendLine] = {}


class Spend:
    """Accumulates calls, tokens and cost of one investigation; safe across threads
    (subagents may run side by side).

    `step` and `tool` are labels the caller chooses: the loop step that made the call,
    and the tool (or subagent) on whose behalf it was made.
    """

    def __init__(self, prices: PriceTable):
        self.prices = prices
        self._lock = threading.Lock()
        self._report = SpendReport()

    def record(self, completion: Completion, *, step: str | int | None = None,
               tool: str | None = None) -> float:
        """Add one model call; returns its cost in USD."""
        cost = self.prices.cost(completion.usage, completion.model)
        self.add(completion.usage, cost, model=completion.model, step=step, tool=tool)
        return cost

    def add(self, usage: Usage, cost_usd: float, *, model: str, calls: int = 1,
            step: str | int | None = None, tool: str | None = None) -> None:
        with self._lock:
            r = self._report
            r.total = r.total.plus(usage, cost_usd, calls)
            for table, key in ((r.by_step, step), (r.by_tool, tool), (r.by_model, model)):
                if key is not None:
                    table[str(key)] = table.get(str(key), SpendLine()).plus(usage, cost_usd, calls)

    def merge(self, other: Spend, *, tool: str | None = None) -> None:
        """Fold a subagent's spend into this one, by model, under `tool` if given."""
        for model, line in other.report().by_model.items():
            self.add(line.usage, line.cost_usd, model=model, calls=line.calls, tool=tool)

    @property
    def tokens(self) -> int:
        return self._report.total.usage.total

    @property
    def cost_usd(self) -> float:
        return self._report.total.cost_usd

    def report(self) -> SpendReport:
        with self._lock:
            return self._report.model_copy(deep=True)
