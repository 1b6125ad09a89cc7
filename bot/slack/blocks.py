"""Block Kit for everything Sleuth posts: issue cards, the thread's summary and live trace, the
report, and the two modals. Pure functions of their inputs; no Slack call here.

Every builder keeps Slack's limits (50 blocks a message, 3,000 characters a section…) so that a
long report is shortened, never refused, and says where the rest is: the case file. Text that
came from data or a model is escaped (`&`, `<`, `>`), so a log line holding `<!channel>` cannot
ping a channel; mentions the bot builds itself (`<@U…>`) are kept. Times are plain UTC text:
the local workspace's page does not render Slack's `<!date^…>` tokens.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel

from agents.report import SEVERITY_CRITERIA, Claim, Report, confidence_label
from agents.trace import TraceEvent
from bot.store.models import Issue, IssueStatus, as_utc

Blocks = list[dict[str, Any]]

ACTION_INVESTIGATE = "issue_investigate"
ACTION_MUTE = "issue_mute"
ACTION_UNMUTE = "issue_unmute"
ACTION_RESOLVE = "issue_resolve"
ACTION_CREATE_PR = "report_create_pr"
ACTION_FEEDBACK_UP = "report_feedback_up"
ACTION_FEEDBACK_DOWN = "report_feedback_down"
VIEW_CONFIRM_PR = "confirm_pr"
VIEW_RESOLVE = "resolve_issue"
RESOLUTION_BLOCK, RESOLUTION_ACTION = "resolution", "text"

# Slack's limits (docs.slack.dev/reference/block-kit).
MAX_BLOCKS = 50
SECTION_TEXT = 3000
HEADER_TEXT = 150
FIELD_TEXT = 2000
RESOLUTION_CHARS = 300

SEVERITY_EMOJI = {"SEV1": "🔴", "SEV2": "🟠", "SEV3": "🟡", "SEV4": "🔵"}
STATUS_EMOJI = {"running": "⏳", "done": "✅", "stopped": "⏹️", "failed": "❌"}
TRACE_EMOJI = {"plan": "🗺️", "scratchpad": "📝", "tool_call": "🔧", "tool_result": "↳",
               "subagent_start": "🕵️", "subagent_end": "🏁", "finding": "💡", "error": "❌",
               "limit": "⛔", "report": "📋"}
RESULT_EMOJI = {"error": "❌", "refused": "⛔", "no_data": "∅"}
QUIET_KINDS = ("model_call",)  # one per model turn: kept in the store and the case file only
MORE = " …see the case file"
CARD_ASSETS = 8  # assets named on a card; the rest are counted
CLAIM_CHARS = 900  # one evidence claim with its citations, before packing into sections
EVIDENCE_SECTIONS = 8  # beyond ~20 claims a thread stops being scannable: the case file has all
EXCERPT_CHARS = 160
CLAIM_CITES = 5


# ---------------------------------------------------------------- text

def escape(text: str) -> str:
    """Text from data or a model, safe in mrkdwn: no mention, link or channel ping."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


_MENTION = re.compile(r"<[@#][UWCGS][A-Z0-9]+>")


def escape_keeping_mentions(text: str) -> str:
    """Like `escape`, but the user and channel mentions a caller built (`<@U…>`) stay live."""
    parts, last = [], 0
    for m in _MENTION.finditer(text):
        parts += [escape(text[last:m.start()]), m.group()]
        last = m.end()
    return "".join(parts) + escape(text[last:])


def code(text: str) -> str:
    """An id or a reference as inline code (a backtick inside would end the span)."""
    return f"`{escape(text.replace('`', 'ˋ'))}`"


def fit(text: str, limit: int, more: str = MORE) -> str:
    """`text` (mrkdwn) cut to `limit` characters at a line or word end, ending with `more`."""
    if len(text) <= limit:
        return text
    room = limit - len(more) - 1  # 1: a closing backtick
    head = text[:room]
    end = head.rfind("\n")
    if end < room * 0.6:
        end = head.rfind(" ")
    if end < room * 0.6:
        end = room
    head = _whole_entities(head[:end]).rstrip()
    if head.count("`") % 2:
        head += "`"
    return head + more


def _whole_entities(text: str) -> str:
    """A cut must not leave half an `&amp;` behind."""
    return re.sub(r"&[a-z]{0,3}$", "", text)


def _plain(text: str, limit: int) -> str:
    """plain_text (headers, labels, buttons) is shown as is: only its length matters."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _when(moment: datetime) -> str:
    return f"{as_utc(moment):%Y-%m-%d %H:%M} UTC"


def _channel(channel: str) -> str:
    if re.fullmatch(r"[CG][A-Z0-9]{2,}", channel):
        return f"<#{channel}>"
    return escape("#" + channel.lstrip("#"))


def _label(category: str) -> str:
    return category.replace("_", " ")


# ---------------------------------------------------------------- blocks

def _mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text}


def _section(text: str, **extra: Any) -> dict[str, Any]:
    return {"type": "section", "text": _mrkdwn(fit(text, SECTION_TEXT)), **extra}


def _header(text: str) -> dict[str, Any]:
    return {"type": "header", "text": {"type": "plain_text", "text": _plain(text, HEADER_TEXT),
                                       "emoji": True}}


def _context(*texts: str) -> dict[str, Any]:
    return {"type": "context", "elements": [_mrkdwn(fit(t, SECTION_TEXT)) for t in texts[:10]]}


def _button(text: str, action_id: str, value: str | int,
            style: Literal["primary", "danger"] | None = None) -> dict[str, Any]:
    button = {"type": "button", "text": {"type": "plain_text", "text": _plain(text, 75),
                                         "emoji": True},
              "action_id": action_id, "value": str(value)}
    return {**button, "style": style} if style else button


def _actions(block_id: str, buttons: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"type": "actions", "block_id": block_id, "elements": buttons}] if buttons else []


# ---------------------------------------------------------------- issue card

def issue_card(issue: Issue) -> tuple[str, Blocks]:
    """The issue as its channel first sees it: what, how bad, since when, how often, and
    the buttons that act on it."""
    emoji = SEVERITY_EMOJI.get(issue.severity, "⚪")
    status = IssueStatus(issue.status)
    fields = [
        f"*Severity*\n{emoji} {escape(issue.severity)}",
        f"*Status*\n{_status_line(issue)}",
        f"*First seen*\n{_when(issue.first_seen)}",
        f"*Last seen*\n{_when(issue.last_seen)}",
        f"*Occurrences*\n{issue.occurrences}",
        f"*Owner*\n{_channel(issue.channel)}",
    ]
    blocks: Blocks = [
        _header(f"{emoji} {issue.title}"),
        {"type": "section", "fields": [_mrkdwn(fit(f, FIELD_TEXT)) for f in fields]},
        _section(f"*Impacted assets*\n{_asset_list(issue)}"),
    ]
    if status == IssueStatus.resolved and issue.resolution:
        blocks.append(_section(f"✅ *Resolution:* {escape(issue.resolution)}"))
    blocks.append(_context(f"Issue #{issue.id} · {escape(_label(issue.kind or 'signal'))} · "
                           f"{escape(SEVERITY_CRITERIA.get(issue.severity, ''))}".rstrip(" ·")))
    blocks += _actions(f"issue:{issue.id}", _issue_buttons(issue, status))
    text = f"{emoji} {issue.severity} {escape(issue.title)} ({issue.occurrences}× since " \
           f"{_when(issue.first_seen)}, {status.value})"
    return text, blocks


def moved_card(issue: Issue, channel: str, permalink: str | None = None) -> tuple[str, Blocks]:
    """What a card becomes when its issue moved to `channel` (a new root with another owner):
    where the card is now, and no buttons (they act on the card over there)."""
    where = _channel(channel)
    if permalink and _LINK.fullmatch(permalink):
        where += f": <{permalink}|the card>"
    text = f"Issue #{issue.id} moved to {where}"
    blocks: Blocks = [
        _section(f"➡️ *{escape(_plain(issue.title, HEADER_TEXT))}* moved to {where}"),
        _context(f"Issue #{issue.id} · its root is now owned by {_channel(channel)}: updates, "
                 "buttons and new investigations are there"),
    ]
    return text, blocks


class EarlierRun(BaseModel):
    """An investigation of a moved issue, shown in the thread of one of its earlier cards."""

    investigation_id: int
    running: bool
    channel: str  # where that thread is
    permalink: str | None = None  # of the investigation's summary in that thread


def earlier_runs(runs: list[EarlierRun]) -> str:
    """The note in a moved card's thread: investigations stay in the thread they started in
    (a running one reports there), so the new thread says where they are."""
    lines = []
    for run in runs:
        where = f"the earlier thread in {_channel(run.channel)}"
        if run.permalink and _LINK.fullmatch(run.permalink):
            where = f"<{run.permalink}|the earlier thread>"
        lines.append(f"Investigation #{run.investigation_id} is running in {where}; its report "
                     "will be there." if run.running
                     else f"Investigation #{run.investigation_id} ran in {where}.")
    return "\n".join(lines)


_LINK = re.compile(r"https?://[^\s<>|]+")


def _status_line(issue: Issue) -> str:
    if issue.status == IssueStatus.resolved and issue.resolved_at is not None:
        return f"✅ resolved {_when(issue.resolved_at)}"
    return {"open": "open", "muted": "🔕 muted", "resolved": "✅ resolved"}[issue.status]


def _asset_list(issue: Issue) -> str:
    assets = list(dict.fromkeys([issue.asset, *issue.assets]))
    shown = ", ".join(code(a) for a in assets[:CARD_ASSETS])
    extra = len(assets) - CARD_ASSETS
    return shown + (f" +{extra} more" if extra > 0 else "")


def _issue_buttons(issue: Issue, status: IssueStatus) -> list[dict[str, Any]]:
    buttons = []
    if status != IssueStatus.resolved:
        buttons.append(_button("🔎 Investigate", ACTION_INVESTIGATE, issue.id or 0, "primary"))
    if status == IssueStatus.muted:
        buttons.append(_button("🔔 Unmute", ACTION_UNMUTE, issue.id or 0))
    elif status == IssueStatus.open:
        buttons.append(_button("🔕 Mute", ACTION_MUTE, issue.id or 0))
    if status != IssueStatus.resolved:
        buttons.append(_button("✅ Resolve", ACTION_RESOLVE, issue.id or 0))
    return buttons


# ---------------------------------------------------------------- thread summary and trace

class ThreadSummary(BaseModel):
    """The one summary message at the top of an investigation's thread, edited in place."""

    investigation_id: int
    title: str
    status: Literal["running", "done", "stopped", "failed"]
    policy: str = ""
    plan: list[str] = []
    leading_hypothesis: str | None = None
    confidence: float | None = None
    steps: int = 0
    cost_usd: float = 0.0
    seconds: float | None = None
    note: str | None = None  # the failure's message, or "asked by <@U…>" (mentions kept)


_STATUS_WORDS = {"running": "Investigating", "done": "Investigated", "stopped": "Stopped",
                 "failed": "Failed"}


def thread_summary(summary: ThreadSummary) -> tuple[str, Blocks]:
    words = _STATUS_WORDS[summary.status]
    head = f"{STATUS_EMOJI[summary.status]} *{words}:* {escape(summary.title)}"
    blocks: Blocks = [_section(head)]
    if summary.plan:
        blocks.append(_section("*Plan*\n" + "\n".join(f"• {escape(p)}" for p in summary.plan)))
    if summary.leading_hypothesis:
        lead = "Conclusion" if summary.status == "done" else "Leading hypothesis"
        blocks.append(_section(f"*{lead}:* {escape(summary.leading_hypothesis)}"))
    facts = [f"investigation #{summary.investigation_id}"]
    if summary.policy:
        facts.append(escape(summary.policy))
    if summary.confidence is not None:
        facts.append(f"confidence {confidence_label(summary.confidence)} "
                     f"({summary.confidence:.2f})")
    facts.append(f"{summary.steps} steps")
    if summary.cost_usd:
        facts.append(f"${summary.cost_usd:.4f}")
    if summary.seconds is not None:
        facts.append(f"{summary.seconds:.1f} s")
    context = [" · ".join(facts)]
    if summary.note:
        context.append(escape_keeping_mentions(summary.note))
    blocks.append(_context(*context))
    return f"{words}: {escape(summary.title)}", blocks


def trace_markdown(event: TraceEvent) -> str:
    """One line of the live trace (mrkdwn, ends with a newline); "" for the quiet kinds."""
    if event.kind in QUIET_KINDS:
        return ""
    emoji = TRACE_EMOJI.get(event.kind, "•")
    if event.kind == "tool_result":
        emoji = RESULT_EMOJI.get(event.status or "", emoji)
    summary = " ".join(event.summary.split())
    # Subagents' summaries already start with their name ("data → run_sql …").
    who = "" if summary.lower().startswith(event.agent.lower()) else f"_{escape(event.agent)}_ · "
    return f"{emoji} {who}{escape(summary)}\n"


def trace_message(lines: list[str], *, running: bool) -> tuple[str, Blocks]:
    """The trace as one edited message: the newest lines that fit one section, and how many
    earlier ones only the case file shows."""
    lines = [fit(line.rstrip("\n"), 500, "…") for line in lines if line.strip()]
    kept: list[str] = []
    size = 0
    for line in reversed(lines):
        if size + len(line) + 1 > SECTION_TEXT - 60:  # room for the "earlier steps" line
            break
        kept.append(line)
        size += len(line) + 1
    kept.reverse()
    dropped = len(lines) - len(kept)
    body = "\n".join(kept) or "_Starting…_"
    if dropped:
        body = f"_…{dropped} earlier steps in the case file_\n{body}"
    state = "🟢 live: new steps appear here" if running else "finished"
    text = f"Investigation trace ({'live' if running else 'finished'}), {len(lines)} steps"
    return text, [_section(body), _context(state)]


# ---------------------------------------------------------------- report

def report_blocks(report: Report, *, report_id: int, issue_id: int | None,
                  case_name: str | None = None) -> tuple[str, Blocks]:
    """The report in the thread: root cause and confidence first, then the evidence with its
    citations, the fix, and the rest. Within 50 blocks; what is cut points at the case file."""
    rc, emoji = report.root_cause, SEVERITY_EMOJI[report.severity]
    unknown = rc.category == "unknown" or rc.node is None
    at = f" at {code(rc.node)}" if rc.node else ""
    lead: Blocks = [
        _header(f"{emoji} {report.title}"),
        _section(f"*Root cause:* {_label(rc.category)}{at} · confidence "
                 f"*{report.confidence_label}* ({report.confidence:.2f})\n"
                 f"{escape(rc.explanation)}"),
        _context(*_overview(report)),
    ]
    early: Blocks = [_section(escape(report.summary))]
    if unknown and report.next_checks:  # nothing settled: what to check is the news
        early.append(_section(_bullets("*Check next*", report.next_checks)))
    rest = [_section(t) for t in _rest(report, unknown)]
    footer = _context(_case_pointer(report_id, case_name))
    actions = _actions(f"report:{report_id}", _report_buttons(report, report_id, issue_id))
    room = MAX_BLOCKS - len(lead) - 1 - len(early) - len(rest) - 1 - len(actions)  # 1: notice
    evidence = _evidence(report, max(min(room, EVIDENCE_SECTIONS), 1))
    blocks = [*lead, *early, *evidence, *rest, footer, *actions]
    if _was_cut(blocks):
        blocks.insert(len(lead), _context(f"✂️ Shortened to fit Slack: the full report is in "
                                          f"{_case_file(case_name)}."))
    text = (f"{emoji} {report.severity} report: {escape(report.title)} — "
            f"{_label(rc.category)} ({report.confidence_label} confidence)")
    return text, blocks


def _overview(report: Report) -> list[str]:
    severity = report.severity
    parts = [f"{SEVERITY_EMOJI[severity]} *{severity}*: {SEVERITY_CRITERIA[severity]}",
             f"produced by {escape(report.produced_by)}"]
    if report.limits_hit:
        parts.append(f"⛔ stopped by {escape(report.limits_hit)}: the report may be incomplete")
    return parts


def _rest(report: Report, unknown: bool) -> list[str]:
    """Section texts after the evidence, most actionable first; empty parts left out."""
    texts = []
    if report.fix_steps:
        texts.append(_bullets("*Fix*", report.fix_steps, numbered=True))
    if report.code_change.needed:
        files = ", ".join(code(f) for f in report.code_change.files)
        texts.append(f"*Code change* in {files}\n{_code_block(report.code_change.sketch, 800)}")
    texts.append(f"*What happened*\n{escape(report.what_happened)}")
    if report.impacted_assets:
        texts.append("*Impacted assets*\n" + ", ".join(code(a) for a in report.impacted_assets))
    if report.next_checks and not unknown:
        texts.append(_bullets("*Check next*", report.next_checks))
    if report.prevention:
        texts.append(_bullets("*Prevention*", report.prevention))
    if report.rejected_hypotheses:
        texts.append(_bullets("*Rejected hypotheses*", [
            f"{r.hypothesis}: {r.why}" for r in report.rejected_hypotheses]))
    if report.ruled_out:
        texts.append(_bullets("*Ruled out*", report.ruled_out))
    return texts


def _bullets(heading: str, items: Iterable[str], numbered: bool = False) -> str:
    return heading + "".join(f"\n{f'{i}.' if numbered else '•'} {escape(item)}"
                             for i, item in enumerate(items, 1))


def _code_block(text: str | None, limit: int) -> str:
    body = escape((text or "").replace("```", "ˋˋˋ")).strip("\n")
    if len(body) > limit:
        body = _whole_entities(body[:limit].rsplit("\n", 1)[0]) + "\n…"
        return f"```\n{body}\n```{MORE}"
    return f"```\n{body}\n```"


def _evidence(report: Report, max_blocks: int) -> Blocks:
    """Claims with their citations, packed into as few sections as hold them; those that do
    not fit are counted in the last one."""
    if not report.evidence:
        return []
    claims = [_claim(i, claim) for i, claim in enumerate(report.evidence, 1)]
    limit = SECTION_TEXT - len(MORE) - 40  # room for "…N more claims"
    texts = ["*Evidence*"]
    for n, claim in enumerate(claims):
        if len(texts[-1]) + 1 + len(claim) <= limit:
            texts[-1] += "\n" + claim
        elif len(texts) < max_blocks:
            texts.append(claim)
        else:
            texts[-1] += f"\n_…{len(claims) - n} more claims{MORE}_"
            break
    return [_section(t) for t in texts]


def _claim(number: int, claim: Claim) -> str:
    """A claim, then where to check it: its citations are never the part that gets cut."""
    cites = " · ".join(f"{c.kind} {code(c.reference)}" for c in claim.citations[:CLAIM_CITES])
    if len(claim.citations) > CLAIM_CITES:
        cites += f" · +{len(claim.citations) - CLAIM_CITES} more{MORE}"
    said = fit(escape(claim.text), max(300, CLAIM_CHARS - len(cites)))
    text = f"*{number}.* {said}\n      ↳ {cites}"
    quote = next((line.strip() for line in claim.citations[0].excerpt.splitlines()
                  if line.strip()), "") if claim.citations else ""
    if quote:
        text += f"\n> {fit(escape(quote), EXCERPT_CHARS, '…')}"
    return fit(text, 2 * CLAIM_CHARS)  # only absurdly long references reach this


def _case_file(case_name: str | None) -> str:
    return f"the case file {code(case_name)}" if case_name else "the case file in this thread"


def _case_pointer(report_id: int, case_name: str | None) -> str:
    return (f"Report #{report_id} · every step, query and excerpt is in "
            f"{_case_file(case_name)} · 👍/👎 tells Sleuth whether this helped")


def _report_buttons(report: Report, report_id: int,
                    issue_id: int | None) -> list[dict[str, Any]]:
    buttons = []
    if report.code_change.needed:
        buttons.append(_button("🔧 Create PR", ACTION_CREATE_PR, report_id, "primary"))
    if issue_id is not None:
        buttons.append(_button("✅ Resolve issue", ACTION_RESOLVE, issue_id))
    buttons += [_button("👍", ACTION_FEEDBACK_UP, report_id),
                _button("👎", ACTION_FEEDBACK_DOWN, report_id)]
    return buttons


def _was_cut(blocks: Blocks) -> bool:
    texts = [b.get("text", {}).get("text", "") for b in blocks]
    texts += [e.get("text", "") for b in blocks for e in b.get("elements", [])
              if b["type"] == "context"]
    return any(MORE.strip() in t for t in texts)


# ---------------------------------------------------------------- modals

def pr_confirm_modal(report: Report, report_id: int, *, channel: str, thread_ts: str) -> dict:
    """The approver's last look before a PR: the change, the cause, and what approving does."""
    change, rc = report.code_change, report.root_cause
    files = ", ".join(code(f) for f in change.files) or "_no files named_"
    blocks: Blocks = [
        _section(f"*{escape(report.title)}*\n*Root cause:* {_label(rc.category)}"
                 + (f" at {code(rc.node)}" if rc.node else "") + f" · confidence "
                 f"*{report.confidence_label}*\n{escape(rc.explanation)}"),
        _section(f"*Files*\n{files}"),
    ]
    if change.needed and change.sketch:
        blocks.append(_section(f"*Proposed change*\n{_code_block(change.sketch, 2600)}"))
    else:
        blocks.append(_section("_This report proposes no code change._"))
    blocks.append(_context(
        "ℹ️ The PR subagent is not built yet. Approving records your approval of report "
        f"#{report_id} and posts in the thread what it would do: open a branch with this "
        "change and a pull request for review. Nothing is pushed today."))
    metadata = {"report_id": report_id, "channel": channel, "thread_ts": thread_ts}
    return _modal(VIEW_CONFIRM_PR, "Create a pull request", "Approve", blocks, metadata)


def resolve_modal(issue: Issue, *, channel: str, ts: str) -> dict:
    """Ask in one line what fixed the issue: issue memory keeps it for the next time."""
    blocks: Blocks = [
        _section(f"{SEVERITY_EMOJI.get(issue.severity, '⚪')} *{escape(issue.title)}* "
                 f"(issue #{issue.id})"),
        {"type": "input", "block_id": RESOLUTION_BLOCK,
         "label": {"type": "plain_text", "text": "What fixed it?"},
         "hint": {"type": "plain_text", "text": "One line. Issue memory keeps it, so the next "
                                                "investigation of a similar issue finds it."},
         "element": {"type": "plain_text_input", "action_id": RESOLUTION_ACTION,
                     "max_length": RESOLUTION_CHARS, "placeholder": {
                         "type": "plain_text",
                         "text": "e.g. Reverted the join change in fct_orders and backfilled"}}},
    ]
    metadata = {"issue_id": issue.id, "channel": channel, "ts": ts}
    return _modal(VIEW_RESOLVE, "Resolve issue", "Resolve", blocks, metadata)


def _modal(callback_id: str, title: str, submit: str, blocks: Blocks,
           metadata: dict[str, Any]) -> dict:
    def plain(text: str) -> dict[str, Any]:
        return {"type": "plain_text", "text": text}

    return {"type": "modal", "callback_id": callback_id, "title": plain(_plain(title, 24)),
            "submit": plain(submit), "close": plain("Cancel"), "blocks": blocks,
            "private_metadata": json.dumps(metadata)}


def resolution_prompt(issue_id: int) -> tuple[str, Blocks]:
    """The ephemeral ask after a :white_check_mark: resolved an issue: its one-line resolution,
    through the same modal as the card's Resolve button."""
    text = f"Issue #{issue_id} is resolved. What fixed it?"
    return text, [
        _section(f"Issue #{issue_id} is resolved. Say in one line what fixed it: the next "
                 "investigation of a problem like it will read this."),
        {"type": "actions", "elements": [_button("Add the resolution", ACTION_RESOLVE,
                                                 issue_id)]}]


# ---------------------------------------------------------------- /investigate

def investigate_help(problem: str | None = None) -> str:
    """The ephemeral answer to an empty or unknown `/investigate` argument."""
    usage = ("*Usage:* `/investigate &lt;issue id | asset | question&gt;`\n"
             "• `/investigate 12`: issue #12 (its card shows the number)\n"
             "• `/investigate model.shop.fct_orders`: an asset\n"
             "• `/investigate why did revenue drop since Monday?`: a free-text question\n"
             "Or click *Investigate* on an issue card, or react to it with :mag:.")
    return f"{escape(problem)}\n\n{usage}" if problem else usage
