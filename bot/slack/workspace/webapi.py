"""The Web API at `/api/<method>`: Slack's arguments, response shapes and error names.

Each method is a function of (api, args) returning the response's fields; a refusal raises
`ApiError` with Slack's error name. Arguments arrive as form fields or JSON, the token as
`Authorization: Bearer` (or a `token` field); the server turns results into HTTP.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bot.slack.workspace.credentials import Credentials
from bot.slack.workspace.handles import Handles
from bot.slack.workspace.ratelimit import RateLimiter
from bot.slack.workspace.state import (
    BOT_ID,
    BOT_NAME,
    BOT_USER_ID,
    TEAM_ID,
    TEAM_NAME,
    Workspace,
)
from bot.slack.workspace.validation import (
    MAX_TEXT,
    block_errors,
    parse_json_arg,
    text_error,
    view_errors,
    with_block_ids,
)

_EMOJI_NAME = re.compile(r"^[a-z0-9_+'-]{1,100}$")


class ApiError(Exception):
    """A Slack error: `{"ok": false, "error": name, ...extra}` with an HTTP status."""

    def __init__(self, error: str, *, status: int = 200, headers: dict[str, str] | None = None,
                 messages: list[str] | None = None) -> None:
        super().__init__(error)
        self.error, self.status, self.headers = error, status, headers or {}
        self.messages = messages or []

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"ok": False, "error": self.error}
        if self.messages:
            body["errors"] = [m.removeprefix("[ERROR] ") for m in self.messages]
            body["response_metadata"] = {"messages": self.messages}
        return body


@dataclass
class WebApi:
    """What the methods need: the state, the tokens, and the hooks into delivery and sockets."""

    ws: Workspace
    credentials: Credentials
    base_url: Callable[[], str]
    limiter: RateLimiter = field(default_factory=RateLimiter)
    handles: Handles = field(default_factory=Handles)
    socket_url: Callable[[], str] = lambda: ""
    on_message: Callable[[dict[str, Any], dict[str, Any]], None] = lambda channel, message: None
    on_reaction: Callable[[str, dict[str, Any], dict[str, Any], str], None] = \
        lambda kind, channel, message, name: None

    def call(self, method: str, args: dict[str, Any], token: str | None) -> dict[str, Any]:
        """Run `method`; raise ApiError for anything Slack would refuse."""
        entry = METHODS.get(method)
        if entry is None:
            raise ApiError("unknown_method", status=404)
        handler, kind = entry
        self._authorize(token or args.get("token"), kind)
        return {"ok": True, **handler(self, args)}

    def _authorize(self, token: Any, kind: str) -> None:
        if not token:
            raise ApiError("not_authed")
        bot = self.credentials.bot_token.get_secret_value()
        app = self.credentials.app_token.get_secret_value()
        if token not in (bot, app):
            raise ApiError("invalid_auth")
        if (kind == "app") != (token == app):
            raise ApiError("not_allowed_token_type")

    # ---- helpers shared by the methods --------------------------------------------------

    def channel_of(self, args: dict[str, Any], key: str = "channel",
                   create: bool = False) -> dict[str, Any]:
        ref = str(args.get(key) or "")
        found = self.ws.ensure_channel(ref) if create else self.ws.channel(ref)
        if not ref or found is None:
            raise ApiError("channel_not_found")
        return found

    def message_of(self, channel: dict[str, Any], ts: Any) -> dict[str, Any]:
        found = self.ws.message(channel["id"], str(ts or ""))
        if found is None:
            raise ApiError("message_not_found")
        return found

    def absolute(self, message: dict[str, Any]) -> dict[str, Any]:
        """File URLs are stored relative to the server; hand them out absolute."""
        for f in message.get("files", []):
            for key in ("url_private", "url_private_download"):
                if f[key].startswith("/"):
                    f[key] = self.base_url().rstrip("/") + f[key]
        return message


def _blocks_arg(args: dict[str, Any], required_text: bool = True) -> tuple[str, Any]:
    """Validated (text, blocks) of a message-posting call; blocks None when not given."""
    text = args.get("text")
    if text_error(text):
        raise ApiError(text_error(text) or "invalid_arguments")
    blocks = parse_json_arg(args["blocks"]) if args.get("blocks") not in (None, "") else None
    if blocks is not None:
        errors = block_errors(blocks)
        if errors:
            raise ApiError("invalid_blocks", messages=errors)
        blocks = with_block_ids(blocks)
    if required_text and not text and not blocks and not args.get("attachments"):
        raise ApiError("no_text")
    return text or "", blocks


def _flag(value: Any) -> bool:
    return value is True or str(value).lower() in ("1", "true")


def _thread_root(api: WebApi, channel: dict[str, Any], thread_ts: Any) -> str | None:
    """Replies to a reply join the parent's thread, as in Slack."""
    if not thread_ts:
        return None
    parent = api.ws.message(channel["id"], str(thread_ts))
    if parent is None:
        raise ApiError("thread_not_found")
    return parent.get("thread_ts") or parent["ts"]


def _cursor(ts: str) -> str:
    return base64.b64encode(f"next_ts:{ts}".encode()).decode()


def _from_cursor(cursor: Any) -> str | None:
    if not cursor:
        return None
    try:
        return base64.b64decode(str(cursor)).decode().removeprefix("next_ts:")
    except ValueError as exc:
        raise ApiError("invalid_cursor") from exc


def _limit(args: dict[str, Any], default: int, most: int) -> int:
    try:
        return max(1, min(most, int(args.get("limit") or default)))
    except ValueError as exc:
        raise ApiError("invalid_limit") from exc


# ---- auth, users, user groups ------------------------------------------------------------

def auth_test(api: WebApi, args: dict[str, Any]) -> dict[str, Any]:
    return {"url": api.base_url(), "team": TEAM_NAME, "user": BOT_NAME, "team_id": TEAM_ID,
            "user_id": BOT_USER_ID, "bot_id": BOT_ID, "is_enterprise_install": False}


def users_info(api: WebApi, args: dict[str, Any]) -> dict[str, Any]:
    user = api.ws.user(str(args.get("user") or ""))
    if user is None:
        raise ApiError("user_not_found")
    return {"user": user}


def users_list(api: WebApi, args: dict[str, Any]) -> dict[str, Any]:
    return {"members": api.ws.users(), "cache_ts": 0, "response_metadata": {"next_cursor": ""}}


def usergroups_users_list(api: WebApi, args: dict[str, Any]) -> dict[str, Any]:
    group = str(args.get("usergroup") or "")
    if not group:
        raise ApiError("invalid_arguments",
                       messages=["[ERROR] missing required field: usergroup"])
    members = api.ws.usergroup_members(group)
    if members is None:
        raise ApiError("no_such_subteam")
    return {"users": members}


# ---- chat ------------------------------------------------------------------------------

def chat_post_message(api: WebApi, args: dict[str, Any]) -> dict[str, Any]:
    channel = api.channel_of(args, create=True)
    text, blocks = _blocks_arg(args)
    thread_ts = _thread_root(api, channel, args.get("thread_ts"))
    wait = api.limiter.acquire(f"chat.postMessage:{channel['id']}")
    if wait:
        raise ApiError("ratelimited", status=429, headers={"Retry-After": str(wait)})
    message = api.ws.add_message(channel["id"], user=BOT_USER_ID, text=text, blocks=blocks,
                                 thread_ts=thread_ts,
                                 broadcast=bool(thread_ts) and _flag(args.get("reply_broadcast")))
    api.on_message(channel, message)
    return {"channel": channel["id"], "ts": message["ts"], "message": api.absolute(message)}


def chat_update(api: WebApi, args: dict[str, Any]) -> dict[str, Any]:
    channel = api.channel_of(args)
    current = api.message_of(channel, args.get("ts"))
    if current.get("bot_id") != BOT_ID:
        raise ApiError("cant_update_message")
    text, blocks = _blocks_arg(args, required_text=False)
    if not text and blocks is None and not current.get("text") and not current.get("blocks"):
        raise ApiError("no_text")
    changes: dict[str, Any] = {"text": text if "text" in args else current["text"]}
    if blocks is not None:  # as in Slack: without `blocks` the previous blocks are kept
        changes["blocks"] = blocks or None
    message = api.ws.update_message(channel["id"], current["ts"], edited_by=BOT_USER_ID,
                                    **changes)
    return {"channel": channel["id"], "ts": message["ts"], "text": message["text"],
            "message": api.absolute(message)}


def chat_post_ephemeral(api: WebApi, args: dict[str, Any]) -> dict[str, Any]:
    channel = api.channel_of(args)
    user = api.ws.user(str(args.get("user") or ""))
    if user is None:
        raise ApiError("user_not_found")
    text, blocks = _blocks_arg(args)
    thread_ts = _thread_root(api, channel, args.get("thread_ts"))
    message = api.ws.add_message(channel["id"], user=BOT_USER_ID, text=text, blocks=blocks,
                                 thread_ts=thread_ts, ephemeral_to=user["id"])
    return {"message_ts": message["ts"]}


def chat_delete(api: WebApi, args: dict[str, Any]) -> dict[str, Any]:
    channel = api.channel_of(args)
    message = api.message_of(channel, args.get("ts"))
    if message.get("bot_id") != BOT_ID:
        raise ApiError("cant_delete_message")
    api.ws.delete_message(channel["id"], message["ts"])
    return {"channel": channel["id"], "ts": message["ts"]}


def chat_get_permalink(api: WebApi, args: dict[str, Any]) -> dict[str, Any]:
    channel = api.channel_of(args)
    message = api.message_of(channel, args.get("message_ts"))
    return {"channel": channel["id"],
            "permalink": f"{api.base_url()}#/{channel['id']}/{message['ts']}"}


# ---- streaming (chat.startStream / appendStream / stopStream) ------------------------------

def _chunk_parts(args: dict[str, Any]) -> tuple[str, list[dict[str, Any]], list[dict[str, Any]]]:
    """(markdown text, task/plan chunks, blocks) carried by `markdown_text` and `chunks`."""
    text = str(args.get("markdown_text") or "")
    chunks = parse_json_arg(args["chunks"]) if args.get("chunks") else []
    if not isinstance(chunks, list):
        raise ApiError("invalid_arguments",
                       messages=["[ERROR] must provide an array [json-pointer:/chunks]"])
    tasks, blocks = [], []
    for chunk in chunks:
        kind = chunk.get("type") if isinstance(chunk, dict) else None
        if kind == "markdown_text":
            text += str(chunk.get("text") or "")
        elif kind in ("task_update", "plan_update"):
            tasks.append(chunk)
        elif kind == "blocks":
            blocks += chunk.get("blocks") or []
        else:
            reason = f"[ERROR] unsupported chunk type: {kind} [json-pointer:/chunks]"
            raise ApiError("invalid_arguments", messages=[reason])
    return text, tasks, blocks


def _merge_tasks(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A task_update replaces the task with its id; a plan_update replaces the plan title."""
    merged = {(c["type"], c.get("id")): c for c in old}
    for chunk in new:
        merged[(chunk["type"], chunk.get("id"))] = chunk
    return list(merged.values())


def _streaming(api: WebApi, args: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    channel = api.channel_of(args)
    found = api.ws.message(channel["id"], str(args.get("ts") or ""), internal=True)
    if found is None:
        raise ApiError("message_not_found")
    if found["stream"] != "open":
        raise ApiError("message_not_in_streaming_state")
    return channel, found


def _require_recipient(channel: dict[str, Any], args: dict[str, Any]) -> None:
    """Outside a DM Slack streams to one person and refuses a stream without them (team first)."""
    if channel["is_im"]:
        return
    for key in ("recipient_team_id", "recipient_user_id"):
        if not args.get(key):
            raise ApiError(f"missing_{key}")


def chat_start_stream(api: WebApi, args: dict[str, Any]) -> dict[str, Any]:
    channel = api.channel_of(args)
    if not args.get("thread_ts"):
        raise ApiError("invalid_arguments",
                       messages=["[ERROR] missing required field: thread_ts"])
    _require_recipient(channel, args)
    thread_ts = _thread_root(api, channel, args.get("thread_ts"))
    text, tasks, blocks = _chunk_parts(args)
    message = api.ws.add_message(channel["id"], user=BOT_USER_ID, text=text, thread_ts=thread_ts,
                                 stream="open", blocks=blocks or None)
    if tasks:
        api.ws.update_message(channel["id"], message["ts"], chunks=_merge_tasks([], tasks))
    return {"channel": channel["id"], "ts": message["ts"]}


def chat_append_stream(api: WebApi, args: dict[str, Any]) -> dict[str, Any]:
    channel, message = _streaming(api, args)
    text, tasks, blocks = _chunk_parts(args)
    if not text and not tasks and not blocks:
        raise ApiError("invalid_arguments",
                       messages=["[ERROR] must provide markdown_text or chunks"])
    if len(message["text"]) + len(text) > MAX_TEXT:
        raise ApiError("msg_too_long")
    api.ws.update_message(channel["id"], message["ts"], text=message["text"] + text,
                          chunks=_merge_tasks(message["chunks"], tasks),
                          blocks=(message.get("blocks") or []) + blocks or None)
    return {"channel": channel["id"], "ts": message["ts"]}


def chat_stop_stream(api: WebApi, args: dict[str, Any]) -> dict[str, Any]:
    channel, message = _streaming(api, args)
    text, tasks, blocks = _chunk_parts(args)
    if args.get("blocks"):
        extra = parse_json_arg(args["blocks"])
        errors = block_errors(extra)
        if errors:
            raise ApiError("invalid_blocks", messages=errors)
        blocks += with_block_ids(extra)
    final = api.ws.update_message(channel["id"], message["ts"], text=message["text"] + text,
                                  chunks=_merge_tasks(message["chunks"], tasks), stream="done",
                                  blocks=(message.get("blocks") or []) + blocks or None)
    return {"channel": channel["id"], "ts": final["ts"], "message": api.absolute(final)}


# ---- reactions ---------------------------------------------------------------------------

def _reaction_args(api: WebApi, args: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], str]:
    channel = api.channel_of(args)
    message = api.message_of(channel, args.get("timestamp"))
    name = str(args.get("name") or "").strip(":")
    if not _EMOJI_NAME.match(name):
        raise ApiError("invalid_name")
    return channel, message, name


def reactions_add(api: WebApi, args: dict[str, Any]) -> dict[str, Any]:
    channel, message, name = _reaction_args(api, args)
    if not api.ws.add_reaction(channel["id"], message["ts"], name, BOT_USER_ID):
        raise ApiError("already_reacted")
    api.on_reaction("reaction_added", channel, message, name)
    return {}


def reactions_remove(api: WebApi, args: dict[str, Any]) -> dict[str, Any]:
    channel, message, name = _reaction_args(api, args)
    if not api.ws.remove_reaction(channel["id"], message["ts"], name, BOT_USER_ID):
        raise ApiError("no_reaction")
    api.on_reaction("reaction_removed", channel, message, name)
    return {}


# ---- conversations -----------------------------------------------------------------------

def conversations_history(api: WebApi, args: dict[str, Any]) -> dict[str, Any]:
    channel = api.channel_of(args)
    after_cursor = _from_cursor(args.get("cursor"))
    messages, more = api.ws.history(
        channel["id"], latest=after_cursor or args.get("latest"), oldest=args.get("oldest"),
        inclusive=_flag(args.get("inclusive")) and not after_cursor,
        limit=_limit(args, 100, 999))
    return {"messages": [api.absolute(m) for m in messages], "has_more": more, "pin_count": 0,
            "channel_actions_ts": None, "channel_actions_count": 0,
            "response_metadata": {"next_cursor": _cursor(messages[-1]["ts"]) if more else ""}}


def conversations_replies(api: WebApi, args: dict[str, Any]) -> dict[str, Any]:
    channel = api.channel_of(args)
    if api.ws.message(channel["id"], str(args.get("ts") or "")) is None:
        raise ApiError("thread_not_found")
    messages, more = api.ws.replies(channel["id"], str(args["ts"]), limit=_limit(args, 1000, 1000),
                                    after=_from_cursor(args.get("cursor")))
    return {"messages": [api.absolute(m) for m in messages], "has_more": more,
            "response_metadata": {"next_cursor": _cursor(messages[-1]["ts"]) if more else ""}}


def conversations_list(api: WebApi, args: dict[str, Any]) -> dict[str, Any]:
    types = str(args.get("types") or "public_channel").split(",")
    channels = [c for c in api.ws.channels()
                if ("im" in types if c["is_im"] else "public_channel" in types)]
    return {"channels": channels, "response_metadata": {"next_cursor": ""}}


def conversations_info(api: WebApi, args: dict[str, Any]) -> dict[str, Any]:
    return {"channel": api.channel_of(args)}


def conversations_open(api: WebApi, args: dict[str, Any]) -> dict[str, Any]:
    users = [u for u in str(args.get("users") or "").split(",") if u]
    if len(users) != 1:
        raise ApiError("not_enough_users" if not users else "too_many_users")
    if api.ws.user(users[0]) is None:
        raise ApiError("user_not_found")
    channel = api.ws.open_im(users[0])
    return {"channel": channel if _flag(args.get("return_im")) else {"id": channel["id"]}}


# ---- views -------------------------------------------------------------------------------

def _view_arg(args: dict[str, Any]) -> dict[str, Any]:
    view = parse_json_arg(args.get("view") or "")
    errors = view_errors(view)
    if errors:
        raise ApiError("invalid_arguments", messages=errors)
    return {**view, "blocks": with_block_ids(view.get("blocks", []))}


def _trigger_user(api: WebApi, args: dict[str, Any]) -> str:
    user, error = api.handles.use_trigger(str(args.get("trigger_id") or ""))
    if error or user is None:
        raise ApiError(error or "invalid_trigger_id")
    return user


def views_open(api: WebApi, args: dict[str, Any]) -> dict[str, Any]:
    view = _view_arg(args)
    user = _trigger_user(api, args)
    return {"view": api.ws.save_view(view, user=user)}


def views_push(api: WebApi, args: dict[str, Any]) -> dict[str, Any]:
    view = _view_arg(args)
    user = _trigger_user(api, args)
    stack = api.ws.open_views(user)
    if not stack:
        raise ApiError("not_found")
    if len(stack) >= 3:
        raise ApiError("push_limit_reached")
    return {"view": api.ws.save_view(view, user=user, root_id=stack[-1]["root_view_id"],
                                     previous_id=stack[-1]["id"])}


def views_update(api: WebApi, args: dict[str, Any]) -> dict[str, Any]:
    view = _view_arg(args)
    found = api.ws.view(args.get("view_id"), args.get("external_id"))
    if found is None:
        raise ApiError("not_found")
    current, user = found
    if args.get("hash") and args["hash"] != current["hash"]:
        raise ApiError("hash_conflict")
    keep = {k: current[k] for k in ("id", "root_view_id", "previous_view_id")}
    return {"view": api.ws.save_view({**view, **keep}, user=user)}


# ---- files -------------------------------------------------------------------------------

def files_get_upload_url(api: WebApi, args: dict[str, Any]) -> dict[str, Any]:
    name = str(args.get("filename") or "")
    try:
        length = int(args.get("length") or 0)
    except ValueError:
        length = 0
    if not name or length <= 0:
        raise ApiError("invalid_arguments",
                       messages=["[ERROR] filename and a positive length are required"])
    file_id, key = api.ws.create_file(name, length, BOT_USER_ID)
    return {"upload_url": f"{api.base_url()}upload/v1/{file_id}/{key}", "file_id": file_id}


def files_complete_upload(api: WebApi, args: dict[str, Any]) -> dict[str, Any]:
    files = parse_json_arg(args.get("files") or "")
    if not isinstance(files, list) or not files or not all(isinstance(f, dict) for f in files):
        raise ApiError("invalid_arguments", messages=["[ERROR] files must be an array"])
    for f in files:
        row = api.ws.file_row(str(f.get("id") or ""))
        if row is None:
            raise ApiError("file_not_found")
        if row["content"] is None:
            raise ApiError("file_upload_not_completed")
    channel = api.channel_of(args, "channel_id") if args.get("channel_id") else None
    for f in files:
        api.ws.complete_file(f["id"], f.get("title"))
    if channel is not None:
        thread_ts = _thread_root(api, channel, args.get("thread_ts"))
        message = api.ws.add_message(channel["id"], user=BOT_USER_ID,
                                     text=str(args.get("initial_comment") or ""),
                                     thread_ts=thread_ts, files=[f["id"] for f in files])
        api.on_message(channel, message)
    return {"files": [{"id": f["id"], "title": (api.ws.file_json(f["id"]) or {}).get("title")}
                      for f in files]}


# ---- Socket Mode -------------------------------------------------------------------------

def apps_connections_open(api: WebApi, args: dict[str, Any]) -> dict[str, Any]:
    return {"url": api.socket_url()}


Handler = Callable[[WebApi, dict[str, Any]], dict[str, Any]]
METHODS: dict[str, tuple[Handler, str]] = {
    "auth.test": (auth_test, "bot"),
    "users.info": (users_info, "bot"),
    "users.list": (users_list, "bot"),
    "usergroups.users.list": (usergroups_users_list, "bot"),
    "chat.postMessage": (chat_post_message, "bot"),
    "chat.update": (chat_update, "bot"),
    "chat.postEphemeral": (chat_post_ephemeral, "bot"),
    "chat.delete": (chat_delete, "bot"),
    "chat.getPermalink": (chat_get_permalink, "bot"),
    "chat.startStream": (chat_start_stream, "bot"),
    "chat.appendStream": (chat_append_stream, "bot"),
    "chat.stopStream": (chat_stop_stream, "bot"),
    "reactions.add": (reactions_add, "bot"),
    "reactions.remove": (reactions_remove, "bot"),
    "conversations.history": (conversations_history, "bot"),
    "conversations.replies": (conversations_replies, "bot"),
    "conversations.list": (conversations_list, "bot"),
    "conversations.info": (conversations_info, "bot"),
    "conversations.open": (conversations_open, "bot"),
    "views.open": (views_open, "bot"),
    "views.push": (views_push, "bot"),
    "views.update": (views_update, "bot"),
    "files.getUploadURLExternal": (files_get_upload_url, "bot"),
    "files.completeUploadExternal": (files_complete_upload, "bot"),
    "apps.connections.open": (apps_connections_open, "app"),
}
