"""Ask a model for JSON matching a pydantic model: parse leniently, retry once with the error."""

from __future__ import annotations

import json
import re
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from agents.models.protocol import Message, ModelError, Provider

T = TypeVar("T", bound=BaseModel)
_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.S)

INSTRUCTION = ("\n\nAnswer with one JSON object and nothing else (no prose, no code fence) "
               "that matches this JSON schema:\n{schema}")
RETRY = ("That answer could not be used: {problem}. Answer again with only the corrected "
         "JSON object.")


def structured(provider: Provider, system: str, user: str, model_type: type[T], *,
               max_tokens: int | None = None) -> T:
    """The model's answer as `model_type`; raises ModelError after two unusable answers."""
    schema = json.dumps(model_type.model_json_schema(), separators=(",", ":"))
    system = system + INSTRUCTION.format(schema=schema)
    messages = [Message.user(user)]
    problem = ""
    for attempt in range(2):
        completion = provider.complete(system, messages, max_tokens=max_tokens)
        try:
            return model_type.model_validate(parse_json_object(completion.text))
        except (ValueError, ValidationError) as exc:
            problem = describe(exc)
            if completion.stop_reason == "max_tokens":
                problem += " (the answer was cut off at max_tokens)"
            messages += [completion.message(), Message.user(RETRY.format(problem=problem))]
    raise ModelError(provider.name, provider.model,
                     f"no valid {model_type.__name__} in 2 answers: {problem}",
                     advice="see the prompt and the schema; this case belongs in the evals")


def parse_json_object(text: str) -> Any:
    """The JSON object in `text`: whole, inside a code fence, or between the outer braces."""
    fenced = _FENCE.search(text)
    candidate = (fenced.group(1) if fenced else text).strip()
    try:
        return json.loads(candidate)
    except ValueError:
        start, end = candidate.find("{"), candidate.rfind("}")
        if start < 0 or end <= start:
            raise ValueError("there is no JSON object in the answer") from None
        return json.loads(candidate[start:end + 1])


def describe(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(f"{'.'.join(map(str, e['loc'])) or '(root)'}: {e['msg']}"
                         for e in exc.errors()[:10])
    return f"invalid JSON ({exc})"
