"""What a person does on the page, turned into what Slack would send the app.

A message becomes a stored message plus `message` / `app_mention` events; `/investigate …`
a slash command; a reaction `reaction_added`/`removed`; a button `block_actions`; a modal's
Submit `view_submission`. The app's answers (HTTP body, Socket Mode ack payload, or a POST
to the response URL) are applied here too.
"""

from __future__ import annotations

import re
import secrets
import uuid
from typing import Any

from bot.errors import SleuthError
from bot.slack.workspace.delivery import Delivery, Reply
from bot.slack.workspace.handles import Handles
from bot.slack.workspace.state import (
    APP_ID,
    BOT_NAME,
    BOT_USER_ID,
    TEAM_DOMAIN,
    TEAM_ID,
    Workspace,
)
from bot.slack.workspace.validation import block_errors, view_errors, with_block_ids

SLACKBOT = "USLACKBOT"
_TOKEN = re.compile(r"(@[A-Za-z0-9._-]+|#[a-z0-9_-]+|https?://\S+)")


class Actions:
    def __init__(self, ws: Workspace, delivery: Delivery, handles: Handles, base_url: Any,
                 commands: list[str]) -> None:
        self.ws, self.delivery, self.handles = ws, delivery, handles
        self.base_url = base_url  # a callable: the port is known once the server is bound
        self.commands = commands

    # ---- messages and slash commands ---------------------------------------------------

    def post(self, user: str, channel_id: str, text: str,
             thread_ts: str | None = None) -> dict[str, Any]:
        """A person's message (or `/command …`): the stored message, or the command's outcome."""
        person, channel = self._person(user), self._channel(channel_id)
        if text.startswith("/"):
            return self.slash(person, channel, text)
        if not text.strip():
            raise SleuthError("an empty message")
        slack_text, elements = self._markup(text)
        blocks = [{"type": "rich_text", "block_id": secrets.token_hex(3),
                   "elements": [{"type": "rich_text_section", "elements": elements}]}]
        message = self.ws.add_message(channel["id"], user=person["id"], text=slack_text,
                                      blocks=blocks, thread_ts=self._root(channel, thread_ts))
        event = {"user": person["id"], "text": slack_text, "ts": message["ts"],
                 "channel": channel["id"], "event_ts": message["ts"], "team": TEAM_ID,
                 "blocks": blocks, "client_msg_id": str(uuid.uuid4())}
        if "thread_ts" in message:
            event["thread_ts"] = message["thread_ts"]
        channel_type = "im" if channel["is_im"] else "channel"
        self.delivery.send_event({"type": "message", **event, "channel_type": channel_type})
        if f"<@{BOT_USER_ID}>" in slack_text and not channel["is_im"]:
            self.delivery.send_event({"type": "app_mention", **event})
        return message

    def slash(self, person: dict[str, Any], channel: dict[str, Any], text: str) -> dict[str, Any]:
        command, _, rest = text.strip().partition(" ")
        if command not in self.commands:
            self._notice(person["id"], channel["id"],
                         f"`{command}` is not a valid command. In Slack, all messages that "
                         "start with the \"/\" character are interpreted as commands.")
            return {"ok": False, "error": "unknown_command"}
        context = {"kind": "command", "channel": channel["id"], "user": person["id"]}
        payload = {"token": self.delivery.verification_token, "team_id": TEAM_ID,
                   "team_domain": TEAM_DOMAIN, "channel_id": channel["id"],
                   "channel_name": channel.get("name", "directmessage"), "user_id": person["id"],
                   "user_name": person["name"], "command": command, "text": rest.strip(),
                   "api_app_id": APP_ID, "is_enterprise_install": "false",
                   "response_url": self._response_url(context),
                   "trigger_id": self.handles.new_trigger(person["id"])}
        reply = self.delivery.send_request("slash_commands", payload, f"command {command}")
        if not reply.ok:
            self._notice(person["id"], channel["id"],
                         f"{command} failed with the error \"{reply.error}\"")
        elif reply.body:
            self.respond(context, reply.body)
        return {"ok": reply.ok, "error": reply.error}

    # ---- reactions and buttons ---------------------------------------------------------

    def react(self, user: str, channel_id: str, ts: str, name: str) -> bool:
        """Add `name` (or take it back when already there); True when it was added."""
        person, channel = self._person(user), self._channel(channel_id)
        message = self.ws.message(channel["id"], ts)
        if message is None:
            raise SleuthError(f"no message {ts} in {channel_id}")
        name = name.strip(":")
        added = self.ws.add_reaction(channel["id"], ts, name, person["id"])
        if not added:
            self.ws.remove_reaction(channel["id"], ts, name, person["id"])
        self.delivery.send_event({
            "type": "reaction_added" if added else "reaction_removed", "user": person["id"],
            "reaction": name, "item_user": message["user"],
            "item": {"type": "message", "channel": channel["id"], "ts": ts},
            "event_ts": self.ws.next_ts()})
        return added

    def click(self, user: str, action_id: str, block_id: str | None, *,
              channel_id: str | None = None, ts: str | None = None,
              view_id: str | None = None, selected: str | None = None) -> Reply:
        """A button or select in a message (`channel_id`, `ts`) or in an open modal (`view_id`)."""
        person = self._person(user)
        payload: dict[str, Any] = {
            "type": "block_actions", "user": _user_ref(person), "api_app_id": APP_ID,
            "token": self.delivery.verification_token, "trigger_id":
            self.handles.new_trigger(person["id"]), "team": {"id": TEAM_ID, "domain": TEAM_DOMAIN},
            "enterprise": None, "is_enterprise_install": False}
        if view_id:
            found = self.ws.view(view_id)
            if found is None:
                raise SleuthError(f"no open view {view_id}")
            view, blocks = found[0], found[0].get("blocks", [])
            payload |= {"container": {"type": "view", "view_id": view_id}, "view": view}
        else:
            channel = self._channel(channel_id or "")
            message = self.ws.message(channel["id"], ts or "")
            if message is None:
                raise SleuthError(f"no message {ts} in {channel_id}")
            blocks = message.get("blocks", [])
            context = {"kind": "action", "channel": channel["id"], "user": person["id"],
                       "message_ts": message["ts"], "thread_ts": message.get("thread_ts")}
            container = {"type": "message", "message_ts": message["ts"],
                         "channel_id": channel["id"], "is_ephemeral": False}
            if message.get("thread_ts") and message["thread_ts"] != message["ts"]:
                container["thread_ts"] = message["thread_ts"]
            payload |= {"container": container, "message": message,
                        "channel": {"id": channel["id"], "name": channel.get("name", "")},
                        "state": {"values": {}}, "response_url": self._response_url(context)}
        element, found_block = _find_element(blocks, action_id, block_id)
        if element is None:
            raise SleuthError(f"no element with action_id {action_id!r}")
        payload["actions"] = [_action(element, found_block, selected, self.ws.next_ts())]
        return self.delivery.send_request("interactive", payload, f"block_actions {action_id}")

    # ---- modals ------------------------------------------------------------------------

    def submit_view(self, user: str, view_id: str,
                    values: dict[str, dict[str, Any]]) -> dict[str, Any]:
        """Submit the modal; returns `{"ok": …, "errors": {block_id: message}}` for the page."""
        person = self._person(user)
        found = self.ws.view(view_id)
        if found is None:
            raise SleuthError(f"no open view {view_id}")
        view = {**found[0], "state": {"values": _state_values(found[0], values)}}
        payload = {"type": "view_submission", "team": {"id": TEAM_ID, "domain": TEAM_DOMAIN},
                   "user": _user_ref(person), "api_app_id": APP_ID,
                   "token": self.delivery.verification_token,
                   "trigger_id": self.handles.new_trigger(person["id"]), "view": view,
                   "response_urls": [], "is_enterprise_install": False, "enterprise": None}
        reply = self.delivery.send_request("interactive", payload,
                                           f"view_submission {view.get('callback_id', '')}")
        if not reply.ok:
            return {"ok": False, "error": "We had some trouble connecting. Try again?"}
        return self._view_response(person["id"], view, reply.body)

    def close_view(self, user: str, view_id: str) -> None:
        person = self._person(user)
        found = self.ws.view(view_id)
        if found is None:
            return
        view = found[0]
        self.ws.close_view(view_id)
        if view.get("notify_on_close"):
            self.delivery.send_request("interactive", {
                "type": "view_closed", "team": {"id": TEAM_ID, "domain": TEAM_DOMAIN},
                "user": _user_ref(person), "api_app_id": APP_ID, "view": view,
                "is_cleared": False, "token": self.delivery.verification_token},
                f"view_closed {view.get('callback_id', '')}")

    def _view_response(self, user: str, view: dict[str, Any], body: Any) -> dict[str, Any]:
        action = body.get("response_action") if isinstance(body, dict) else None
        if action == "errors":
            return {"ok": False, "errors": body.get("errors") or {}}
        if action in ("update", "push"):
            new = body.get("view")
            if view_errors(new):
                return {"ok": False, "error": "The app answered with an invalid view."}
            new = {**new, "blocks": with_block_ids(new.get("blocks", []))}
            if action == "update":
                self.ws.save_view({**new, "id": view["id"], "root_view_id": view["root_view_id"],
                                   "previous_view_id": view.get("previous_view_id")}, user=user)
            else:
                self.ws.save_view(new, user=user, root_id=view["root_view_id"],
                                  previous_id=view["id"])
        elif action == "clear":
            self.ws.close_views(view["root_view_id"])
        else:
            self.ws.close_view(view["id"])
        return {"ok": True}

    # ---- answers from the app ------------------------------------------------------------

    def respond(self, context: dict[str, Any], body: Any) -> str | None:
        """Apply a slash command / response_url answer; Slack's error name when refused."""
        if isinstance(body, str):
            body = {"text": body}
        if not isinstance(body, dict):
            return "invalid_payload"
        blocks = body.get("blocks")
        if blocks is not None:
            if block_errors(blocks):
                return "invalid_blocks"
            blocks = with_block_ids(blocks)
        channel, original = context["channel"], context.get("message_ts")
        if original and body.get("delete_original"):
            self.ws.delete_message(channel, original)
        elif original and body.get("replace_original"):
            changes = {"text": body.get("text", "")}
            if blocks is not None:
                changes["blocks"] = blocks or None
            self.ws.update_message(channel, original, edited_by=BOT_USER_ID, **changes)
        elif not body.get("text") and not blocks:
            return "no_text"
        elif body.get("response_type") == "in_channel":
            self.ws.add_message(channel, user=BOT_USER_ID, text=body.get("text", ""),
                                blocks=blocks, thread_ts=body.get("thread_ts")
                                or context.get("thread_ts"))
        else:
            self.ws.add_message(channel, user=BOT_USER_ID, text=body.get("text", ""),
                                blocks=blocks, ephemeral_to=context["user"],
                                thread_ts=body.get("thread_ts") or context.get("thread_ts"))
        return None

    # ---- helpers -------------------------------------------------------------------------

    def _person(self, user: str) -> dict[str, Any]:
        person = self.ws.user(user)
        if person is None or person["is_bot"]:
            raise SleuthError(f"no person with id {user!r} in the workspace")
        return person

    def _channel(self, channel_id: str) -> dict[str, Any]:
        channel = self.ws.channel(channel_id)
        if channel is None:
            raise SleuthError(f"no channel {channel_id!r} in the workspace")
        return channel

    def _root(self, channel: dict[str, Any], thread_ts: str | None) -> str | None:
        if not thread_ts:
            return None
        parent = self.ws.message(channel["id"], thread_ts)
        if parent is None:
            raise SleuthError(f"no message {thread_ts} to reply to")
        return parent.get("thread_ts") or parent["ts"]

    def _response_url(self, context: dict[str, Any]) -> str:
        return f"{self.base_url()}response/{self.handles.new_response_url(context)}"

    def _notice(self, user: str, channel: str, text: str) -> None:
        self.ws.add_message(channel, user=SLACKBOT, text=text, ephemeral_to=user)

    def _markup(self, text: str) -> tuple[str, list[dict[str, Any]]]:
        """`@sleuth look at #data-finance` → Slack markup and rich_text elements."""
        out, elements = [], []
        for part in _TOKEN.split(text):
            if not part:
                continue
            ref = self._reference(part)
            if ref is None:
                out.append(part)
                elements.append({"type": "text", "text": part})
            else:
                out.append(ref[0])
                elements.append(ref[1])
        return "".join(out), elements

    def _reference(self, token: str) -> tuple[str, dict[str, Any]] | None:
        if token.startswith("@"):
            name = token[1:].rstrip(".,:;!?")
            user = self.ws.user_by_name(BOT_NAME if name.lower() == "sleuth" else name)
            if user and name == token[1:]:
                return f"<@{user['id']}>", {"type": "user", "user_id": user["id"]}
        elif token.startswith("#"):
            channel = self.ws.channel(token)
            if channel:
                return (f"<#{channel['id']}|{channel['name']}>",
                        {"type": "channel", "channel_id": channel["id"]})
        elif token.startswith("http"):
            return f"<{token}>", {"type": "link", "url": token}
        return None


def _user_ref(person: dict[str, Any]) -> dict[str, Any]:
    return {"id": person["id"], "username": person["name"], "name": person["name"],
            "team_id": TEAM_ID}


def _find_element(blocks: list[dict[str, Any]], action_id: str, block_id: str | None
                  ) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    for block in blocks:
        if block_id and block.get("block_id") not in (block_id, None):
            continue
        candidates = list(block.get("elements") or [])
        if block.get("accessory"):
            candidates.append(block["accessory"])
        for element in candidates:
            if isinstance(element, dict) and element.get("action_id") == action_id:
                return element, block
    return None, {}


def _action(element: dict[str, Any], block: dict[str, Any], selected: str | None,
            action_ts: str) -> dict[str, Any]:
    action = {"action_id": element["action_id"], "block_id": block.get("block_id", ""),
              "type": element["type"], "action_ts": action_ts}
    if element["type"] == "button":
        action |= {"text": element.get("text"), "value": element.get("value")}
        if element.get("style"):
            action["style"] = element["style"]
    elif element["type"] in ("static_select", "radio_buttons", "overflow"):
        options = [o for o in element.get("options", []) if o.get("value") == selected]
        action["selected_option"] = options[0] if options else None
    return {k: v for k, v in action.items() if v is not None}


def _state_values(view: dict[str, Any], values: dict[str, dict[str, Any]]
                  ) -> dict[str, dict[str, Any]]:
    """The modal's `state.values`: every input's element, typed as Slack reports it."""
    state: dict[str, dict[str, Any]] = {}
    for block in view.get("blocks", []):
        element = block.get("element") if block.get("type") == "input" else None
        if not element or "action_id" not in element:
            continue
        block_id, action_id = block.get("block_id", ""), element["action_id"]
        given = values.get(block_id, {}).get(action_id)
        entry: dict[str, Any] = {"type": element["type"]}
        if element["type"] in ("static_select", "radio_buttons"):
            options = [o for o in element.get("options", []) if o.get("value") == given]
            entry["selected_option"] = options[0] if options else None
        else:
            entry["value"] = given if given not in ("", None) else None
        state.setdefault(block_id, {})[action_id] = entry
    return state

