"""A deterministic provider for tests and evals: replies from a list or a function.

Token usage is estimated from characters (4 per token) when a reply does not set it, so
spend tracking and budgets behave as with a real model.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from agents.models.protocol import Completion, Message, ModelError, ToolSpec, Usage

Reply = Completion | str


@dataclass(frozen=True)
class ScriptedCall:
    """What the provider was asked, kept for assertions."""

    system: str
    messages: list[Message]
    tools: list[ToolSpec]
    max_tokens: int | None


class ScriptedProvider:
    name = "scripted"

    def __init__(self, script: Sequence[Reply] | Callable[[ScriptedCall], Reply],
                 model: str = "scripted"):
        self.model = model
        self.calls: list[ScriptedCall] = []
        self._script = script if callable(script) else list(script)

    def complete(self, system: str, messages: list[Message], tools: Sequence[ToolSpec] = (),
                 *, max_tokens: int | None = None) -> Completion:
        call = ScriptedCall(system, list(messages), list(tools), max_tokens)
        self.calls.append(call)
        if callable(self._script):
            reply = self._script(call)
        elif len(self.calls) <= len(self._script):
            reply = self._script[len(self.calls) - 1]
        else:
            raise ModelError(self.name, self.model, f"the script has no reply for call "
                             f"{len(self.calls)} (it holds {len(self._script)})")
        completion = Completion(text=reply) if isinstance(reply, str) else reply
        update: dict[str, object] = {}
        if not completion.model:
            update["model"] = self.model
        if completion.usage == Usage():
            update["usage"] = _estimate(call, completion)
        return completion.model_copy(update=update)


def _tokens(text: str) -> int:
    return max(1, len(text) // 4)


def _estimate(call: ScriptedCall, completion: Completion) -> Usage:
    sent = call.system + "".join(m.model_dump_json() for m in call.messages)
    sent += "".join(t.model_dump_json() for t in call.tools)
    said = completion.text + json.dumps([c.arguments for c in completion.tool_calls])
    return Usage(input_tokens=_tokens(sent), output_tokens=_tokens(said))
