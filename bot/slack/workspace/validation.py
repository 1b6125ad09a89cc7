"""Block Kit and message limits, checked as Slack checks them, with Slack's error messages.

slack_sdk's models know each block's and element's limits (`to_dict()` validates the whole
tree); the counts per message or view, and the 40,000-character text limit, are added here.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
MAX_TEXT = 40_000


def parse_json_arg(value: Any) -> Any:
    """Form posts carry `blocks`, `view`, `files`… as JSON strings; JSON posts as values."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return _Invalid(value)
    return value


class _Invalid:
    """A value that was meant to be JSON and is not."""

    def __init__(self, raw: str) -> None:
        self.raw = raw


def block_errors(blocks: Any, limit: int = MAX_MESSAGE_BLOCKS,
                 pointer: str = "/blocks") -> list[str]:
    """Slack-style reasons why `blocks` would be refused; empty when they are valid."""
    if isinstance(blocks, _Invalid) or not isinstance(blocks, list):
        return [f"[ERROR] must provide an array [json-pointer:{pointer}]"]
    if len(blocks) > limit:
        return [f"[ERROR] no more than {limit} items allowed [json-pointer:{pointer}]"]
    errors = []
    for i, block in enumerate(blocks):
        reason = _block_error(block)
        if reason:
            errors.append(f"[ERROR] {reason} [json-pointer:{pointer}/{i}]")
    return errors


def with_block_ids(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Slack gives every block without a `block_id` a random one; actions refer to it."""
    return [b if b.get("block_id") else {**b, "block_id": secrets.token_urlsafe(4)}
            for b in blocks]


def _block_error(block: Any) -> str | None:
    if not isinstance(block, dict) or "type" not in block:
        return "must provide an object with a type"
    for key in ("text", "title"):
        if key in block and not isinstance(block[key], dict | type(None)) \
                and block["type"] not in ("markdown", "image", "video"):
            return f"{key} must be a text object"
    parsed = Block.parse(block)
    if parsed is None:
        return f"unsupported block type: {block['type']}"
    try:
        parsed.to_dict()
    except (SlackObjectFormationError, TypeError, ValueError, KeyError, AttributeError) as exc:
        return str(exc) or type(exc).__name__
    return None


def text_error(text: Any) -> str | None:
    """Slack's error name for a `text` argument it refuses."""
    if text is not None and not isinstance(text, str):
        return "invalid_arguments"
    if text and len(text) > MAX_TEXT:
        return "msg_too_long"
    return None


def view_errors(view: Any) -> list[str]:
    """Reasons a modal would be refused (title, submit and close lengths, 100 blocks…)."""
    if isinstance(view, _Invalid) or not isinstance(view, dict):
        return ["[ERROR] must provide an object [json-pointer:/view]"]
    if view.get("type") != "modal":
        return ["[ERROR] must be a modal [json-pointer:/view/type]"]
    errors = block_errors(view.get("blocks", []), MAX_VIEW_BLOCKS, "/view/blocks")
    if errors:
        return errors
    try:
        fields = {k: v for k, v in view.items() if k in _VIEW_FIELDS}
        View(**fields).to_dict()
    except (SlackObjectFormationError, TypeError, ValueError) as exc:
        return [f"[ERROR] {exc} [json-pointer:/view]"]
    return []


_VIEW_FIELDS = {"type", "title", "blocks", "close", "submit", "private_metadata", "callback_id",
                "external_id", "clear_on_close", "notify_on_close", "submit_disabled"}
