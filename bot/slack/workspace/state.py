"""The workspace's state: team, users, channels, messages, reactions, files, views, in SQLite.

One connection guarded by a lock serves every thread (the HTTP server, deliveries, the
WebSocket server); every change bumps `version`, which the page long-polls. Objects are
returned in Slack's JSON shapes so the Web API can hand them out as they are.
"""

from __future__ import annotations

import json
import re
import secrets
import sqlite3
import string
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

TEAM_ID = "T0SLEUTH01"
TEAM_NAME = "Sleuth Demo"
TEAM_DOMAIN = "sleuth-demo"
APP_ID = "A0SLEUTH01"
BOT_ID = "B0SLEUTH01"
BOT_USER_ID = "U0SLEUTHBOT"
BOT_NAME = "sleuth"
APPROVER_USER_ID = "U0ALEX0001"
NON_APPROVER_USER_ID = "U0SAM00002"
APPROVER_GROUP_ID = "S0APPROVERS"
DEMO_CHANNELS = ("data-alerts", "data-commerce", "data-marketing", "data-finance")

# (id, handle, real name, title): Alex may approve pull requests in the demo, Sam may not.
DEMO_USERS = (
    (APPROVER_USER_ID, "alex", "Alex Rivera", "Data platform lead (approver)"),
    (NON_APPROVER_USER_ID, "sam", "Sam Okafor", "Analytics engineer"),
    ("U0JO000003", "jo", "Jo Lindqvist", "Finance analyst"),
)

# (id, handle, name, members): the user group the app may be told approves pull requests.
# Fixed, not stored, so a workspace made before groups existed has them too.
DEMO_USERGROUPS = (
    (APPROVER_GROUP_ID, "data-approvers", "Data approvers", (APPROVER_USER_ID,)),
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS users (
  id TEXT PRIMARY KEY, name TEXT NOT NULL, real_name TEXT NOT NULL, title TEXT NOT NULL,
  is_bot INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS channels (
  id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, created INTEGER NOT NULL,
  is_im INTEGER NOT NULL DEFAULT 0, im_user TEXT, topic TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS messages (
  channel TEXT NOT NULL, ts TEXT NOT NULL, thread_ts TEXT, user TEXT NOT NULL,
  bot INTEGER NOT NULL DEFAULT 0, text TEXT NOT NULL DEFAULT '', blocks TEXT,
  files TEXT, edited TEXT, subtype TEXT, ephemeral_to TEXT, broadcast INTEGER DEFAULT 0,
  stream TEXT, chunks TEXT, PRIMARY KEY (channel, ts));
CREATE INDEX IF NOT EXISTS messages_thread ON messages (channel, thread_ts);
CREATE TABLE IF NOT EXISTS reactions (
  channel TEXT NOT NULL, ts TEXT NOT NULL, name TEXT NOT NULL, user TEXT NOT NULL,
  added REAL NOT NULL, PRIMARY KEY (channel, ts, name, user));
CREATE TABLE IF NOT EXISTS files (
  id TEXT PRIMARY KEY, name TEXT NOT NULL, title TEXT NOT NULL, length INTEGER NOT NULL,
  user TEXT NOT NULL, created INTEGER NOT NULL, upload_key TEXT NOT NULL, content BLOB,
  shared INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS views (
  id TEXT PRIMARY KEY, user TEXT NOT NULL, root_id TEXT NOT NULL, previous_id TEXT,
  external_id TEXT, hash TEXT NOT NULL, body TEXT NOT NULL, open INTEGER NOT NULL DEFAULT 1,
  opened REAL NOT NULL);
"""


def new_id(prefix: str, length: int = 10) -> str:
    """A Slack-looking id: a type letter and upper-case letters and digits."""
    alphabet = string.ascii_uppercase + string.digits
    return prefix + "".join(secrets.choice(alphabet) for _ in range(length))


def channel_name(ref: str) -> str:
    """`#Data-Alerts` → `data-alerts`: Slack's rules for a channel name, loosely."""
    return re.sub(r"[^a-z0-9_-]+", "-", ref.strip().lstrip("#").lower()).strip("-")[:80]


class Workspace:
    """All of the workspace's data; safe to call from any thread."""

    def __init__(self, db_path: Path) -> None:
        db_path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(db_path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self.version = 0
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(_SCHEMA)
            last = self._db.execute("SELECT max(CAST(ts AS REAL)) FROM messages").fetchone()[0]
            self._last_ts = float(last or 0.0)
            self._seed()

    def close(self) -> None:
        """Close the database and wake the page's long polls (they then answer "stopping")."""
        with self._changed:
            self._db.close()
            self.version += 1
            self._changed.notify_all()

    # ---- plumbing ---------------------------------------------------------------------

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One transaction; readers waiting on the page's long-poll wake up after it."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
            self.version += 1
            self._changed.notify_all()

    def _rows(self, sql: str, *args: Any) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    def _row(self, sql: str, *args: Any) -> sqlite3.Row | None:
        rows = self._rows(sql, *args)
        return rows[0] if rows else None

    def wait_for_change(self, since: int, timeout: float) -> int:
        """Block until `version` differs from `since` (or `timeout` passes); return it."""
        with self._changed:
            self._changed.wait_for(lambda: self.version != since, timeout=timeout)
            return self.version

    def touch(self) -> None:
        """Wake the page for a change that lives outside the database (a delivery, a socket)."""
        with self._changed:
            self.version += 1
            self._changed.notify_all()

    def next_ts(self) -> str:
        with self._lock:
            self._last_ts = max(time.time(), self._last_ts + 0.000001)
            return f"{self._last_ts:.6f}"

    def meta(self, key: str) -> str | None:
        row = self._row("SELECT value FROM meta WHERE key = ?", key)
        return row["value"] if row else None

    def set_meta(self, key: str, value: str) -> None:
        with self._write() as db:
            db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def _seed(self) -> None:
        if self.meta("seeded"):
            return
        with self._write() as db:
            db.execute("INSERT INTO users VALUES (?, ?, ?, ?, 1)",
                       (BOT_USER_ID, BOT_NAME, "Sleuth", "On-call agent for data pipelines"))
            db.executemany("INSERT INTO users VALUES (?, ?, ?, ?, 0)", DEMO_USERS)
            for name in DEMO_CHANNELS:
                db.execute("INSERT INTO channels (id, name, created) VALUES (?, ?, ?)",
                           (new_id("C"), name, int(time.time())))
            db.execute("INSERT INTO meta VALUES ('seeded', '1')")

    # ---- users ------------------------------------------------------------------------

    def users(self) -> list[dict[str, Any]]:
        return [_user_json(r) for r in self._rows("SELECT * FROM users ORDER BY is_bot DESC, id")]

    def user(self, user_id: str) -> dict[str, Any] | None:
        row = self._row("SELECT * FROM users WHERE id = ?", user_id)
        return _user_json(row) if row else None

    def user_by_name(self, name: str) -> dict[str, Any] | None:
        row = self._row("SELECT * FROM users WHERE lower(name) = lower(?)", name)
        return _user_json(row) if row else None

    def usergroup_members(self, group_id: str) -> list[str] | None:
        """The user ids in the user group `group_id`, or None when there is no such group."""
        for found, _handle, _name, members in DEMO_USERGROUPS:
            if found == group_id:
                return list(members)
        return None

    # ---- channels ---------------------------------------------------------------------

    def channels(self) -> list[dict[str, Any]]:
        return [self._channel_json(r) for r in
                self._rows("SELECT * FROM channels ORDER BY is_im, name")]

    def channel(self, ref: str) -> dict[str, Any] | None:
        """A channel by id (`C…`, `D…`) or by name (`#data-alerts`, `data-alerts`)."""
        row = self._row("SELECT * FROM channels WHERE id = ? OR name = ?", ref, channel_name(ref))
        return self._channel_json(row) if row else None

    def ensure_channel(self, ref: str) -> dict[str, Any] | None:
        """The channel `ref` names, created when a name (not an id) is new; None if no match."""
        found = self.channel(ref)
        if found or re.fullmatch(r"[CDG][A-Z0-9]{8,}", ref) or not channel_name(ref):
            return found
        with self._write() as db:
            db.execute("INSERT OR IGNORE INTO channels (id, name, created) VALUES (?, ?, ?)",
                       (new_id("C"), channel_name(ref), int(time.time())))
        return self.channel(ref)

    def open_im(self, user_id: str) -> dict[str, Any]:
        """The direct-message channel between the bot and `user_id`."""
        row = self._row("SELECT * FROM channels WHERE is_im = 1 AND im_user = ?", user_id)
        if row is None:
            with self._write() as db:
                db.execute("INSERT INTO channels (id, name, created, is_im, im_user) "
                           "VALUES (?, ?, ?, 1, ?)",
                           (new_id("D"), f"dm-{user_id.lower()}", int(time.time()), user_id))
            row = self._row("SELECT * FROM channels WHERE is_im = 1 AND im_user = ?", user_id)
        assert row is not None
        return self._channel_json(row)

    def _channel_json(self, row: sqlite3.Row) -> dict[str, Any]:
        base: dict[str, Any] = {"id": row["id"], "created": row["created"],
                                "is_archived": False, "is_org_shared": False,
                                "context_team_id": TEAM_ID, "updated": row["created"] * 1000}
        if row["is_im"]:
            return {**base, "is_im": True, "user": row["im_user"], "is_user_deleted": False}
        members = self._row("SELECT count(*) AS n FROM users")
        return {**base, "name": row["name"], "name_normalized": row["name"], "is_channel": True,
                "is_group": False, "is_im": False, "is_mpim": False, "is_private": False,
                "is_general": row["name"] == "data-alerts", "is_shared": False,
                "is_ext_shared": False, "is_member": True, "creator": APPROVER_USER_ID,
                "topic": {"value": row["topic"], "creator": "", "last_set": 0},
                "purpose": {"value": "", "creator": "", "last_set": 0},
                "num_members": members["n"] if members else 0}

    # ---- messages ---------------------------------------------------------------------

    def add_message(self, channel: str, *, user: str, text: str = "",
                    blocks: list[dict[str, Any]] | None = None, thread_ts: str | None = None,
                    files: list[str] | None = None, ephemeral_to: str | None = None,
                    broadcast: bool = False, stream: str | None = None,
                    subtype: str | None = None) -> dict[str, Any]:
        """Store a new message (a reply when `thread_ts` is set) and return it as Slack does."""
        ts = self.next_ts()
        bot = self._row("SELECT is_bot FROM users WHERE id = ?", user)
        with self._write() as db:
            db.execute(
                "INSERT INTO messages (channel, ts, thread_ts, user, bot, text, blocks, files,"
                " ephemeral_to, broadcast, stream, subtype) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (channel, ts, thread_ts, user, int(bool(bot and bot["is_bot"])), text,
                 _dumps(blocks), _dumps(files), ephemeral_to, int(broadcast), stream, subtype))
        message = self.message(channel, ts, include_ephemeral=True)
        assert message is not None
        return message

    def message(self, channel: str, ts: str, *, include_ephemeral: bool = False,
                internal: bool = False) -> dict[str, Any] | None:
        """One message; `internal` adds what only the workspace knows (stream state, chunks)."""
        row = self._row("SELECT * FROM messages WHERE channel = ? AND ts = ?", channel, ts)
        if row is None or (row["ephemeral_to"] and not include_ephemeral):
            return None
        return self._messages_json([row], internal)[0]

    def update_message(self, channel: str, ts: str, *, edited_by: str | None = None,
                       **fields: Any) -> dict[str, Any]:
        """Change `text`, `blocks`, `files`, `stream`, `chunks` or `subtype` of a message."""
        sets = {k: (_dumps(v) if k in ("blocks", "files", "chunks") else v)
                for k, v in fields.items()}
        if edited_by:
            sets["edited"] = json.dumps({"user": edited_by, "ts": self.next_ts()})
        with self._write() as db:
            db.execute(f"UPDATE messages SET {', '.join(f'{k} = ?' for k in sets)} "
                       "WHERE channel = ? AND ts = ?", (*sets.values(), channel, ts))
        message = self.message(channel, ts, include_ephemeral=True)
        assert message is not None
        return message

    def delete_message(self, channel: str, ts: str) -> None:
        """Delete; a thread parent with replies stays as Slack's tombstone."""
        has_replies = self._row("SELECT 1 FROM messages WHERE channel = ? AND thread_ts = ? "
                                "AND ts != ?", channel, ts, ts)
        with self._write() as db:
            if has_replies:
                db.execute("UPDATE messages SET subtype = 'tombstone', blocks = NULL, files = NULL,"
                           " text = 'This message was deleted.', user = 'USLACKBOT', bot = 0"
                           " WHERE channel = ? AND ts = ?", (channel, ts))
            else:
                db.execute("DELETE FROM messages WHERE channel = ? AND ts = ?", (channel, ts))
            db.execute("DELETE FROM reactions WHERE channel = ? AND ts = ?", (channel, ts))

    def history(self, channel: str, *, latest: str | None = None, oldest: str | None = None,
                inclusive: bool = False, limit: int = 100) -> tuple[list[dict[str, Any]], bool]:
        """Top-level messages (and broadcast replies), newest first, and whether more exist."""
        lt, gt = ("<=", ">=") if inclusive else ("<", ">")
        rows = self._rows(
            "SELECT * FROM messages WHERE channel = ? AND ephemeral_to IS NULL"
            " AND (thread_ts IS NULL OR thread_ts = ts OR broadcast = 1)"
            f" AND CAST(ts AS REAL) {lt} CAST(? AS REAL) AND CAST(ts AS REAL) {gt} CAST(? AS REAL)"
            " ORDER BY CAST(ts AS REAL) DESC LIMIT ?",
            channel, latest or "9999999999", oldest or "0", limit + 1)
        return self._messages_json(rows[:limit]), len(rows) > limit

    def replies(self, channel: str, ts: str, *, limit: int = 1000,
                after: str | None = None) -> tuple[list[dict[str, Any]], bool]:
        """The thread `ts` belongs to: its parent first, then replies oldest first."""
        root = self._row("SELECT thread_ts FROM messages WHERE channel = ? AND ts = ?", channel, ts)
        parent = (root["thread_ts"] if root and root["thread_ts"] else ts)
        rows = self._rows(
            "SELECT * FROM messages WHERE channel = ? AND ephemeral_to IS NULL"
            " AND (ts = ? OR thread_ts = ?) AND CAST(ts AS REAL) > CAST(? AS REAL)"
            " ORDER BY CAST(ts AS REAL) LIMIT ?", channel, parent, parent, after or "0", limit + 1)
        return self._messages_json(rows[:limit]), len(rows) > limit

    def channel_messages(self, channel: str, viewer: str) -> list[dict[str, Any]]:
        """Every message of a channel the page shows to `viewer` (their ephemerals included)."""
        rows = self._rows("SELECT * FROM messages WHERE channel = ? AND (ephemeral_to IS NULL"
                          " OR ephemeral_to = ?) ORDER BY CAST(ts AS REAL)", channel, viewer)
        return self._messages_json(rows, internal=True)

    def _messages_json(self, rows: list[sqlite3.Row],
                       internal: bool = False) -> list[dict[str, Any]]:
        if not rows:
            return []
        channel = rows[0]["channel"]
        reactions = self._reactions_of(channel, [r["ts"] for r in rows])
        threads = {r["thread_ts"]: r for r in self._rows(
            "SELECT thread_ts, count(*) AS n, max(ts) AS latest, group_concat(DISTINCT user) AS"
            " users FROM messages WHERE channel = ? AND thread_ts IS NOT NULL AND ts != thread_ts"
            " AND ephemeral_to IS NULL GROUP BY thread_ts", channel)}
        files = self._files_of(rows)
        return [_message_json(r, reactions.get(r["ts"]), threads.get(r["ts"]), files, internal)
                for r in rows]

    # ---- reactions --------------------------------------------------------------------

    def add_reaction(self, channel: str, ts: str, name: str, user: str) -> bool:
        """False when `user` already reacted with `name`."""
        with self._write() as db:
            cur = db.execute("INSERT OR IGNORE INTO reactions VALUES (?, ?, ?, ?, ?)",
                             (channel, ts, name, user, time.time()))
            return cur.rowcount == 1

    def remove_reaction(self, channel: str, ts: str, name: str, user: str) -> bool:
        with self._write() as db:
            cur = db.execute("DELETE FROM reactions WHERE channel = ? AND ts = ? AND name = ?"
                             " AND user = ?", (channel, ts, name, user))
            return cur.rowcount == 1

    def _reactions_of(self, channel: str, ts_list: list[str]) -> dict[str, list[dict[str, Any]]]:
        out: dict[str, dict[str, list[str]]] = {}
        marks = ",".join("?" * len(ts_list))
        for r in self._rows(f"SELECT * FROM reactions WHERE channel = ? AND ts IN ({marks})"
                            " ORDER BY added", channel, *ts_list):
            out.setdefault(r["ts"], {}).setdefault(r["name"], []).append(r["user"])
        return {ts: [{"name": n, "users": u, "count": len(u)} for n, u in names.items()]
                for ts, names in out.items()}

    # ---- files ------------------------------------------------------------------------

    def create_file(self, name: str, length: int, user: str) -> tuple[str, str]:
        """A file waiting for its upload: (file id, the secret in its upload URL)."""
        file_id, key = new_id("F"), secrets.token_urlsafe(16)
        with self._write() as db:
            db.execute("INSERT INTO files (id, name, title, length, user, created, upload_key)"
                       " VALUES (?, ?, ?, ?, ?, ?, ?)",
                       (file_id, name, name, length, user, int(time.time()), key))
        return file_id, key

    def store_upload(self, file_id: str, key: str, content: bytes) -> bool:
        with self._write() as db:
            cur = db.execute("UPDATE files SET content = ? WHERE id = ? AND upload_key = ?",
                             (content, file_id, key))
            return cur.rowcount == 1

    def file_row(self, file_id: str) -> sqlite3.Row | None:
        return self._row("SELECT * FROM files WHERE id = ?", file_id)

    def complete_file(self, file_id: str, title: str | None) -> None:
        with self._write() as db:
            db.execute("UPDATE files SET shared = 1, title = coalesce(?, title) WHERE id = ?",
                       (title, file_id))

    def file_json(self, file_id: str) -> dict[str, Any] | None:
        row = self.file_row(file_id)
        return _file_json(row) if row else None

    def _files_of(self, rows: list[sqlite3.Row]) -> dict[str, dict[str, Any]]:
        ids = [f for r in rows for f in json.loads(r["files"] or "[]")]
        if not ids:
            return {}
        found = self._rows(f"SELECT * FROM files WHERE id IN ({','.join('?' * len(ids))})", *ids)
        return {r["id"]: _file_json(r) for r in found}

    # ---- views ------------------------------------------------------------------------

    def save_view(self, view: dict[str, Any], *, user: str, root_id: str | None = None,
                  previous_id: str | None = None) -> dict[str, Any]:
        """Open a new view (a modal) for `user`, or replace the body of an open one."""
        view_id = view.get("id") or new_id("V")
        body = {**view, "id": view_id, "team_id": TEAM_ID, "app_id": APP_ID, "bot_id": BOT_ID,
                "hash": f"{int(time.time())}.{secrets.token_hex(4)}",
                "root_view_id": root_id or view.get("root_view_id") or view_id,
                "previous_view_id": previous_id if previous_id else view.get("previous_view_id"),
                "app_installed_team_id": TEAM_ID}
        body.setdefault("state", {"values": {}})
        with self._write() as db:
            db.execute("INSERT OR REPLACE INTO views VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?)",
                       (view_id, user, body["root_view_id"], body["previous_view_id"],
                        body.get("external_id"), body["hash"], json.dumps(body), time.time()))
        return body

    def view(self, view_id: str | None = None, external_id: str | None = None
             ) -> tuple[dict[str, Any], str] | None:
        """An open view and the user it is shown to."""
        row = self._row("SELECT * FROM views WHERE open = 1 AND (id = ? OR external_id = ?)",
                        view_id or "", external_id or "\0")
        return (json.loads(row["body"]), row["user"]) if row else None

    def close_views(self, root_id: str) -> None:
        with self._write() as db:
            db.execute("UPDATE views SET open = 0 WHERE root_id = ?", (root_id,))

    def close_view(self, view_id: str) -> None:
        with self._write() as db:
            db.execute("UPDATE views SET open = 0 WHERE id = ?", (view_id,))

    def open_views(self, user: str) -> list[dict[str, Any]]:
        """The modal stack `user` sees, bottom first."""
        return [json.loads(r["body"]) for r in self._rows(
            "SELECT body FROM views WHERE open = 1 AND user = ? ORDER BY opened", user)]


def _dumps(value: Any) -> str | None:
    return None if value is None else json.dumps(value)


def _user_json(row: sqlite3.Row) -> dict[str, Any]:
    bot = bool(row["is_bot"])
    profile = {"real_name": row["real_name"], "display_name": row["name"], "title": row["title"],
               "real_name_normalized": row["real_name"], "display_name_normalized": row["name"],
               "team": TEAM_ID, "image_48": "", "image_72": ""}
    if bot:
        profile.update(bot_id=BOT_ID, api_app_id=APP_ID, always_active=True)
    else:
        profile["email"] = f"{row['name']}@example.com"
    return {"id": row["id"], "team_id": TEAM_ID, "name": row["name"], "deleted": False,
            "real_name": row["real_name"], "tz": "Europe/Berlin",
            "tz_label": "Central European Time",
            "tz_offset": 3600, "profile": profile, "is_admin": row["id"] == APPROVER_USER_ID,
            "is_owner": False, "is_bot": bot, "is_app_user": False, "updated": 0}


def _file_json(row: sqlite3.Row) -> dict[str, Any]:
    name = row["name"]
    ext = name.rsplit(".", 1)[-1].lower() if "." in name else "text"
    url = f"/files/{row['id']}/{name}"  # the server makes it absolute
    return {"id": row["id"], "created": row["created"], "timestamp": row["created"],
            "name": name, "title": row["title"], "mimetype": _MIME.get(ext, "text/plain"),
            "filetype": ext, "pretty_type": ext.upper(), "user": row["user"],
            "size": len(row["content"] or b"") or row["length"], "is_external": False,
            "is_public": True, "url_private": url, "url_private_download": url + "?download=1",
            "mode": "hosted", "editable": False}


_MIME = {"md": "text/markdown", "json": "application/json", "txt": "text/plain",
         "csv": "text/csv", "png": "image/png", "html": "text/html", "sql": "text/plain"}


def _message_json(row: sqlite3.Row, reactions: list[dict[str, Any]] | None,
                  thread: sqlite3.Row | None, files: dict[str, dict[str, Any]],
                  internal: bool) -> dict[str, Any]:
    msg: dict[str, Any] = {"type": "message", "ts": row["ts"], "user": row["user"],
                           "text": row["text"], "team": TEAM_ID}
    if row["subtype"]:
        msg["subtype"] = row["subtype"]
    if row["blocks"]:
        msg["blocks"] = json.loads(row["blocks"])
    if row["bot"]:
        msg.update(bot_id=BOT_ID, app_id=APP_ID, bot_profile={
            "id": BOT_ID, "app_id": APP_ID, "name": "Sleuth", "team_id": TEAM_ID, "deleted": False})
    if row["thread_ts"]:
        msg["thread_ts"] = row["thread_ts"]
        if row["broadcast"]:
            msg["subtype"] = "thread_broadcast"
    if thread is not None:
        msg.update(thread_ts=row["ts"], reply_count=thread["n"], latest_reply=thread["latest"],
                   reply_users=sorted(set(thread["users"].split(","))),
                   reply_users_count=len(set(thread["users"].split(","))), is_locked=False)
    if row["edited"]:
        msg["edited"] = json.loads(row["edited"])
    if row["files"]:
        msg["files"] = [files[f] for f in json.loads(row["files"]) if f in files]
        msg["upload"] = False
    if reactions:
        msg["reactions"] = reactions
    if internal:
        msg["channel"] = row["channel"]
        msg["ephemeral"] = bool(row["ephemeral_to"])
        msg["stream"] = row["stream"]
        msg["chunks"] = json.loads(row["chunks"] or "[]")
    return msg
