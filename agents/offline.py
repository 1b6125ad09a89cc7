"""The offline policy: a deterministic investigator behind the Provider protocol.

With no API key, `OfflinePolicy` stands in for both models. It drives the same agent loop, the
same tools, trace and report as a real model: each `complete()` reads the conversation so far
(the issue, the tool results) and returns the next tool calls of a playbook. Nothing is kept
between calls, so the same conversation always gives the same calls.

As the orchestrator (its tools include `submit_report`), the playbook is:
  1. the system map around the issue's asset (or a node search for free text) and memory;
  2. a plan, and hypotheses: one per upstream candidate and category (a source's schema,
     nulls, duplicates, freshness, units; a model's recent commit; a loader's config commit;
     the platform's memory and timeouts);
  3. the specialists, in parallel, each with the checks of its hypotheses as JSON context;
  4. each hypothesis supported or rejected from their findings, and the map of the cause;
  5. the report: the best-supported hypothesis, or "unknown" with next checks.
As a specialist (its tools include `submit_findings`), it runs its checks with its tools and
returns one claim per check, whose text starts `H<n> supported|rejected|inconclusive`: the
orchestrator scores hypotheses from those verdicts.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from agents.models.protocol import Completion, Message, ToolCall, ToolResult, ToolSpec

NAME, MODEL = "offline", "offline-policy"
EXCERPT = 240  # characters of a citation's excerpt the policy copies into claims

# Error text in logs, by the category it points at.
# Searched case-insensitively by the log tools.
LOG_PATTERNS: dict[str, str] = {
    "infrastructure": r"out of memory|outofmemory|memory limit|\bOOM\b|killed|timed? ?out|"
                      r"timeout|no space left",
    "schema_change": r"does not have a column|column .{0,60}(not found|does not exist)|"
                     r"binder error|conversion error|could not (convert|parse)|"
                     r"invalid input syntax|type mismatch|no such column",
}
PARTITIONS = ("_partition_date", "partition_date", "ds", "dt", "date", "day")
# Which category wins a tie: a change in the window explains data symptoms below it.
PRIORITY = ("config_change", "code_change", "infrastructure", "schema_change", "freshness",
            "duplicate_data", "semantic_change", "data_quality", "transient")
STRONG, WEAK = 2.0, 1.0
CHANGE_BONUS = 2.0  # a commit in the window outranks the data symptoms it would explain
MAX_TABLES = 8
MAX_MODELS = 12
NUMERIC = ("INT", "DECIMAL", "NUMERIC", "DOUBLE", "FLOAT", "REAL")


class OfflinePolicy:
    """The Provider every role uses when no model is configured (see the module docstring)."""

    name = NAME
    model = MODEL

    def complete(self, system: str, messages: list[Message], tools: Sequence[ToolSpec] = (),
                 *, max_tokens: int | None = None) -> Completion:
        names = {t.name for t in tools}
        convo = Conversation(messages)
        if "submit_report" in names:
            calls = Orchestration(convo, names).next_calls()
        else:
            calls = Specialist(convo, names).next_calls()
        turn = convo.turns
        return Completion(tool_calls=[ToolCall(id=f"off-{turn}-{i}", name=name, arguments=args)
                                      for i, (name, args) in enumerate(calls)],
                          model=MODEL, text=f"offline policy, turn {turn + 1}")


# ---------------------------------------------------------------- the conversation

@dataclass
class Done:
    """A tool call made earlier and what came back."""

    name: str
    arguments: dict[str, Any]
    status: str
    data: Any
    citations: list[dict[str, Any]]
    raw: str


class Conversation:
    """The first user message and every call with its result, in order."""

    def __init__(self, messages: list[Message]) -> None:
        self.first = messages[0].text if messages else ""
        self.turns = sum(m.role == "assistant" for m in messages)
        results = {p.call_id: p for m in messages for p in m.content if isinstance(p, ToolResult)}
        self.done: list[Done] = []
        for m in messages:
            for part in m.content:
                if isinstance(part, ToolCall):
                    result = results.get(part.id)
                    self.done.append(_done(part, result))

    def called(self, name: str) -> list[Done]:
        return [d for d in self.done if d.name == name]

    def any(self, prefix: str) -> list[Done]:
        return [d for d in self.done if d.name.startswith(prefix)]


def _done(call: ToolCall, result: ToolResult | None) -> Done:
    raw = result.content if result is not None else ""
    body = _parse(raw)
    status = body.get("status") or ((m := re.search(r'"status": "(\w+)"', raw)) and m[1])
    return Done(call.name, dict(call.arguments), str(status or "error"),
                body.get("data"), list(body.get("citations") or []), raw)


def _parse(content: str) -> dict[str, Any]:
    """A tool result's JSON, from inside its <untrusted_data> wrapper; {} if cut or not JSON."""
    inner = re.sub(r"^\s*<untrusted_data[^>]*>\s*|\s*</untrusted_data>\s*$", "", content)
    try:
        value = json.loads(inner)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _json_after(text: str, marker: str) -> dict[str, Any]:
    at = text.find(marker)
    if at < 0:
        return {}
    try:
        value, _ = json.JSONDecoder().raw_decode(text[at + len(marker):].strip())
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


# ---------------------------------------------------------------- the issue and its map

@dataclass
class Issue:
    title: str
    asset: str | None
    question: str | None
    summary: str
    severity: str | None
    first_seen: datetime | None
    signals: list[tuple[str, str, str]]  # (kind, asset, title)

    @classmethod
    def from_task(cls, text: str) -> Issue:
        data = _json_after(text, "<untrusted_data name=\"issue\">")
        summary = str(data.get("signals_summary") or "")
        seen = re.search(r"first seen (\S+)", summary)
        signals = [(m[1], m[2], m[3]) for m in
                   re.finditer(r"^- (\w+) (\S+): (.*)$", summary, re.MULTILINE)]
        return cls(title=str(data.get("title") or ""), asset=data.get("asset") or None,
                   question=data.get("question"), summary=summary,
                   severity=data.get("severity"), first_seen=_time(seen[1]) if seen else None,
                   signals=signals)

    def kinds(self) -> set[str]:
        return {k for k, _, _ in self.signals}

    def named(self) -> set[str]:
        """Every asset the issue and its signals name."""
        found = set(re.findall(r"\b(?:source|model|task|exposure|test)\.[\w.]+", self.summary))
        return found | {self.asset} if self.asset else found

    def failed(self) -> list[str]:
        """Assets of signals where something failed outright (a task, a model)."""
        return list(dict.fromkeys(a for k, a, _ in self.signals
                                  if k in ("task_failed", "model_error")))


def _time(text: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text.rstrip(",;"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass
class Node:
    id: str
    kind: str
    name: str
    relation: str | None
    code: list[str]


@dataclass
class MapView:
    """What the policy keeps of a `system_map` result: the node, upstream, downstream."""

    node: Node | None
    upstream: list[Node]
    downstream: list[Node]
    exposures: list[str]

    @classmethod
    def of(cls, done: Done | None) -> MapView:
        if done is None or not isinstance(done.data, dict):
            return cls(None, [], [], []) if done is None else cls._lenient(done.raw)
        d = done.data
        n = d.get("node") or {}
        node = Node(n.get("id", ""), n.get("kind", ""), n.get("name", ""), n.get("relation"),
                    list(n.get("code_paths") or [])) if n else None
        return cls(node, [_node(b) for b in d.get("upstream") or []],
                   [_node(b) for b in d.get("downstream") or []], list(d.get("exposures") or []))

    @classmethod
    def _lenient(cls, raw: str) -> MapView:
        """A result cut at the output limit: the complete node briefs it still holds."""
        split = raw.find('"downstream": [{')
        briefs = []
        for m in re.finditer(r'\{"id": "[^"]*", "kind"[^{}]*\}', raw):
            try:
                briefs.append((m.start(), json.loads(m[0])))
            except ValueError:
                continue
        if not briefs:
            return cls(None, [], [], [])
        first = briefs[0][1]
        node = Node(first["id"], first.get("kind", ""), first.get("name", ""),
                    first.get("relation"), list(first.get("code_paths") or []))
        up = [_node(b) for at, b in briefs[1:] if split < 0 or at < split]
        down = [_node(b) for at, b in briefs[1:] if 0 <= split <= at]
        return cls(node, up, down, [])

    def all(self) -> list[Node]:
        return [n for n in [self.node, *self.upstream, *self.downstream] if n is not None]


def _node(brief: dict[str, Any]) -> Node:
    return Node(str(brief.get("id", "")), str(brief.get("kind", "")), str(brief.get("name", "")),
                brief.get("relation"), list(brief.get("code") or brief.get("code_paths") or []))


# ---------------------------------------------------------------- hypotheses and checks

@dataclass
class Hyp:
    text: str
    node: str
    category: str
    agent: str  # the specialist that tests it
    check: dict[str, Any]
    id: str = ""


@dataclass
class Playbook:
    """The hypotheses of one issue and how each is checked; rebuilt from the conversation."""

    issue: Issue
    view: MapView
    hyps: list[Hyp] = field(default_factory=list)

    @classmethod
    def build(cls, issue: Issue, view: MapView) -> Playbook:
        book = cls(issue, view)
        if view.node is None:
            return book
        chain = [view.node, *(n for n in view.upstream if n.kind != "test")]
        chain_ids = {n.id for n in chain}
        # A loader task writes the source it loads: the source is a candidate too.
        for n in list(chain):
            if n.kind == "task" and n.relation:
                chain += [d for d in view.downstream if d.kind == "source"
                          and d.relation == n.relation and d.id not in chain_ids]
                chain_ids = {c.id for c in chain}
        sources = [n for n in chain if n.kind == "source" and n.relation][:MAX_TABLES]
        for s in sources:
            book._source(s)
        loaders = [n for n in chain if n.kind == "task" and _loader_paths(n)]
        loaders += [n for n in view.all() if n.kind == "task" and _loader_paths(n)
                    and n.relation in {s.relation for s in sources} and n not in loaders]
        for t in loaders:
            book.add(f"A recent commit to {t.name}'s loader config changed what it loads",
                     t.id, "config_change", "code", {"paths": _loader_paths(t)})
        for m in [n for n in chain if n.kind == "model"][:MAX_MODELS]:
            sql = [p for p in m.code if p.endswith(".sql")]
            if sql:
                book.add(f"A recent commit to {m.name} changed its logic", m.id, "code_change",
                         "code", {"paths": sql})
        for t in book._runner_tasks(loaders):
            book.add(f"The platform failed {t} (memory, timeouts)", t, "infrastructure",
                     "logs", {"task": t})
        for i, h in enumerate(book.hyps, 1):
            h.id = f"H{i}"
        return book

    def add(self, text: str, node: str, category: str, agent: str,
            check: dict[str, Any]) -> None:
        self.hyps.append(Hyp(text, node, category, agent, check))

    def _source(self, s: Node) -> None:
        table, name = s.relation or "", s.name
        loaders = [n.id for n in self.view.all() if n.kind == "task" and n.relation == s.relation]
        self.add(f"{name} changed its schema upstream (renamed, dropped or retyped columns, "
                 "or a new format)", s.id, "schema_change", "logs",
                 {"tasks": list(dict.fromkeys([*loaders, *self._dbt_tasks()])),
                  "models": self._readers(s)})
        self.add(f"{name} delivered bad values (a null spike)", s.id, "data_quality", "data",
                 {"table": table, "test": "nulls"})
        self.add(f"{name} delivered the same records twice", s.id, "duplicate_data", "data",
                 {"table": table, "test": "duplicates"})
        self.add(f"{name} is late or missing its latest partition", s.id, "freshness", "data",
                 {"table": table, "test": "freshness"})
        self.add(f"{name} changed the meaning or unit of a column", s.id, "semantic_change",
                 "data", {"table": table, "test": "distribution"})

    def _readers(self, s: Node) -> list[str]:
        """Names of the models that read a source directly, as logs name them."""
        stem = (s.relation or "").split(".")[-1]
        found = [n.name for n in self.view.all() if n.kind == "model" and stem and stem in n.name]
        return [m for m in found if m.startswith("stg_")] or found

    def _dbt_tasks(self) -> list[str]:
        failed = [a for a in self.issue.failed() if a.startswith("task.")]
        found = [n.id for n in self.view.all() if n.kind == "task" and "dbt" in n.id
                 and "freshness" not in n.id] + [a for a in failed if "dbt" in a]
        return list(dict.fromkeys(found))[:2]

    def _runner_tasks(self, loaders: list[Node]) -> list[str]:
        """Tasks whose failure could be the platform's: those that failed, else the dbt run."""
        failed = [a for a in self.issue.failed() if a.startswith("task.")]
        if self.view.node is not None and self.view.node.kind == "task":
            failed.append(self.view.node.id)
        return list(dict.fromkeys(failed or self._dbt_tasks()))[:3]

    def by_agent(self, agent: str) -> list[Hyp]:
        return [h for h in self.hyps if h.agent == agent]


def _loader_paths(n: Node) -> list[str]:
    return [p for p in n.code if p.startswith("loaders/")]


def _task_id(node_id: str) -> str:
    """`task.<dag>.<task>` as the log tools take it: `<dag>.<task>`."""
    return node_id.removeprefix("task.")


# ---------------------------------------------------------------- the orchestrator

class Orchestration:
    def __init__(self, convo: Conversation, tools: set[str]) -> None:
        self.convo, self.tools = convo, tools
        self.issue = Issue.from_task(convo.first)

    def next_calls(self) -> list[tuple[str, dict[str, Any]]]:
        c = self.convo
        if c.called("submit_report"):  # refused: submit the plainest report that validates
            return [("submit_report", {"report": self.unknown_report(
                "the first report was refused: " + c.called("submit_report")[-1].raw[:200])})]
        maps = [d for d in c.called("system_map") if d.status == "ok"]
        if not maps:
            return self.locate()
        book = self.playbook()
        if not c.called("update_plan"):
            return self.plan(book)
        asked = [i for i, d in enumerate(c.done) if d.name.startswith("ask_")]
        if not asked and (calls := self.dispatch(book)):
            return calls
        judged = asked and len(c.done) > asked[-1] + 1
        if not judged and (calls := self.judge(book)):
            return calls
        return [("submit_report", {"report": self.report(book)})]

    # -- 1. where to look

    def locate(self) -> list[tuple[str, dict[str, Any]]]:
        i = self.issue
        text = i.title if not i.question else i.question
        if i.asset and not self.convo.called("system_map"):
            calls: list[tuple[str, dict[str, Any]]] = [("system_map", {"node": i.asset,
                                                                        "depth": 6})]
            if "search_memory" in self.tools:
                calls.append(("search_memory", {"text": text[:300]}))
            return calls
        hits = [d for d in self.convo.called("search_nodes") if d.status == "ok"]
        if hits and isinstance(hits[0].data, dict) and hits[0].data.get("nodes"):
            nodes = [n for n in hits[0].data["nodes"] if n.get("kind") != "test"]
            tried = {d.arguments.get("node") for d in self.convo.called("system_map")}
            for n in nodes:
                if n["id"] not in tried:
                    return [("system_map", {"node": n["id"], "depth": 6})]
        if "search_nodes" in self.tools and not self.convo.called("search_nodes"):
            calls = [("search_nodes", {"text": _keywords(text)})]
            if "search_memory" in self.tools:
                calls.append(("search_memory", {"text": text[:300]}))
            return calls
        return [("submit_report", {"report": self.unknown_report(
            "no node of the system map matches the question")})]

    def playbook(self) -> Playbook:
        maps = [d for d in self.convo.called("system_map") if d.status == "ok"]
        return Playbook.build(self.issue, MapView.of(maps[0]))

    # -- 2. plan and hypotheses

    def plan(self, book: Playbook) -> list[tuple[str, dict[str, Any]]]:
        node = book.view.node.id if book.view.node else "the asset"
        steps = [f"Map {node}: upstream chain to sources, loaders and commits",
                 "Search memory for similar closed issues",
                 f"State {len(book.hyps)} hypotheses, one per upstream candidate and category",
                 "Dispatch the specialists with focused checks, in parallel",
                 "Support or reject each hypothesis from the findings",
                 "Report the best-supported cause, or unknown with next checks"]
        calls: list[tuple[str, dict[str, Any]]] = [("update_plan", {"steps": steps,
                                                                     "done": [1, 2, 3]})]
        calls += [("add_hypothesis", {"text": h.text, "node": h.node, "category": h.category})
                  for h in book.hyps]
        return calls

    # -- 3. the specialists

    def dispatch(self, book: Playbook) -> list[tuple[str, dict[str, Any]]]:
        window = self.window()
        calls = []
        data = book.by_agent("data")
        tables = list(dict.fromkeys(h.check["table"] for h in data))
        if "ask_data_agent" in self.tools:
            for table in tables:
                checks = [{"id": h.id, "test": h.check["test"], "category": h.category}
                          for h in data if h.check["table"] == table]
                calls.append(("ask_data_agent", {
                    "task": f"Check {table} for nulls, duplicates, a missing partition and "
                            "value shifts on its latest load against the loads before",
                    "context": json.dumps({"table": table, "tables": tables,
                                           "checks": checks, **window})}))
        logs = book.by_agent("logs")
        if logs and "ask_logs_agent" in self.tools:
            checks = [{"id": h.id, "category": h.category, "node": h.node,
                       "tasks": [_task_id(t) for t in h.check.get("tasks") or [h.check["task"]]],
                       "models": h.check.get("models", [])} for h in logs]
            calls.append(("ask_logs_agent", {
                "task": "Find the errors of the failing tasks in the window and what they say: "
                        "schema errors, memory or timeouts, missing files",
                "context": json.dumps({"checks": checks, **window})}))
        code = book.by_agent("code")
        if code and "ask_code_agent" in self.tools:
            checks = [{"id": h.id, "category": h.category, "node": h.node,
                       "paths": h.check["paths"]} for h in code]
            calls.append(("ask_code_agent", {
                "task": "List commits in the window to the code and configs of the upstream "
                        "models and loaders, with their diffs",
                "context": json.dumps({"checks": checks, **window})}))
        if "ask_metrics_agent" in self.tools and tables:
            calls.append(("ask_metrics_agent", {
                "task": "Look for spikes, drops and level shifts in rows loaded for the "
                        "upstream tables, aligned with the failure time",
                "context": json.dumps({"tables": tables, **window})}))
        return calls

    def window(self) -> dict[str, str]:
        end = self.issue.first_seen or datetime.now(UTC)
        return {"since": (end - timedelta(hours=36)).isoformat(),
                "until": (end + timedelta(hours=6)).isoformat(), "failure_at": end.isoformat()}

    # -- 4. judging

    def verdicts(self) -> dict[str, Verdict]:
        """Per hypothesis id: its score and the claims behind it, from every finding."""
        out: dict[str, Verdict] = {}
        for d in self.convo.any("ask_"):
            for claim in _claims(d):
                m = re.match(r"(H\d+) (supported|rejected|inconclusive)(?: \((strong|weak)\))?:",
                             claim.get("text", ""))
                if not m:
                    continue
                v = out.setdefault(m[1], Verdict())
                if m[2] == "supported":
                    v.score += STRONG if m[3] != "weak" else WEAK
                    v.support.append(claim)
                elif m[2] == "rejected":
                    v.against.append(claim)
                else:
                    v.unsure.append(claim)
        return out

    def ranked(self, book: Playbook) -> list[tuple[float, Hyp]]:
        verdicts = self.verdicts()
        scored = []
        for h in book.hyps:
            v = verdicts.get(h.id)
            if v is None or not v.support:
                continue
            score = v.score + (CHANGE_BONUS if h.category in ("code_change", "config_change")
                               else 0.0)
            scored.append((score, h))
        order = {c: i for i, c in enumerate(PRIORITY)}
        named = self.issue.named()
        return sorted(scored, key=lambda x: (-x[0], x[1].node not in named,
                                             order.get(x[1].category, 99), x[1].id))

    def judge(self, book: Playbook) -> list[tuple[str, dict[str, Any]]]:
        verdicts = self.verdicts()
        calls: list[tuple[str, dict[str, Any]]] = []
        for h in book.hyps:
            v = verdicts.get(h.id) or Verdict()
            if v.support:
                refs = [c["reference"] for claim in v.support for c in claim.get("citations", [])]
                calls.append(("update_hypothesis", {"id": h.id, "status": "supported",
                                                    "evidence": list(dict.fromkeys(refs))[:6]}))
            elif v.against:
                calls.append(("update_hypothesis", {"id": h.id, "status": "rejected",
                                                    "note": _after_verdict(v.against[0])}))
        for node, checked in self.checked(book, verdicts).items():
            calls.append(("mark_checked", {"node": node, "result": checked}))
        ranked = self.ranked(book)
        if ranked and not [d for d in self.convo.called("system_map")
                           if d.arguments.get("node") == ranked[0][1].node]:
            calls.append(("system_map", {"node": ranked[0][1].node, "depth": 6}))
        return calls

    def checked(self, book: Playbook, verdicts: dict[str, Verdict]) -> dict[str, str]:
        out: dict[str, list[str]] = {}
        for h in book.hyps:
            v = verdicts.get(h.id)
            if v is None:
                continue
            word = "supports" if v.support else "rules out" if v.against else "leaves open"
            out.setdefault(h.node, []).append(f"{word} {h.category.replace('_', ' ')}")
        return {node: "; ".join(parts) for node, parts in out.items()}

    # -- 5. the report

    def report(self, book: Playbook) -> dict[str, Any]:
        ranked = self.ranked(book)
        if not ranked:
            return self.unknown_report("no hypothesis was supported by the evidence", book)
        score, root = ranked[0]
        verdicts = self.verdicts()
        v = verdicts[root.id]
        evidence = [_claim(c) for c in v.support][:6]
        others = [f"{h.text} ({h.node}, {h.category}): supported, but less strongly"
                  for s, h in ranked[1:4]]
        rejected = [{"hypothesis": f"{h.text} ({h.node}, {h.category})",
                     "why": _after_verdict(verdicts[h.id].against[0])}
                    for h in book.hyps if h.id in verdicts and verdicts[h.id].against
                    and not verdicts[h.id].support][:12]
        impacted = self.impacted(root)
        severity = self.severity(root, impacted)
        confidence = 0.9 if score >= 3 * STRONG else 0.8 if score >= 2 * STRONG else \
            0.65 if score >= STRONG else 0.45
        name = root.node.split(".")[-1]
        what = root.category.replace("_", " ")
        change = self.code_change(root, v)
        explanation = (f"{root.text}. " + " ".join(_after_verdict(c) for c in v.support[:3]))
        issue = self.issue
        return {
            "title": f"{what.capitalize()} at {name}: {issue.title}"[:120],
            "summary": f"Most likely root cause: {what} at `{root.node}`. {root.text}, "
                       f"supported by {len(v.support)} finding(s); severity {severity}. "
                       "Produced by the offline policy (no model).",
            "what_happened": (issue.summary or issue.title) + f"\n\nThe evidence points to "
                             f"{root.node}: " + "; ".join(c.get("text", "") for c in
                                                          v.support[:3]),
            "impacted_assets": impacted,
            "severity": severity,
            "root_cause": {"node": root.node, "category": root.category,
                           "explanation": explanation[:1500]},
            "confidence": confidence,
            "evidence": evidence,
            "rejected_hypotheses": rejected,
            "ruled_out": [f"{n}: {r}" for n, r in self.checked(book, verdicts).items()
                          if "supports" not in r][:12],
            "next_checks": others or [f"Confirm with the owner of {root.node} that this "
                                      "explains the whole symptom"],
            "fix_steps": FIX[root.category](root),
            "prevention": PREVENT[root.category](root),
            "code_change": change,
        }

    def impacted(self, root: Hyp) -> list[str]:
        maps = [d for d in self.convo.called("system_map") if d.status == "ok"
                and d.arguments.get("node") == root.node]
        view = MapView.of(maps[0]) if maps else MapView(None, [], [], [])
        down = [n.id for n in view.downstream if n.kind in ("model", "exposure")]
        failed = [a for a in self.issue.failed() if a != root.node]
        exposures = view.exposures
        if root.node.startswith("task.") and not down:  # the platform: what it failed to build
            first = MapView.of(next(d for d in self.convo.called("system_map")
                                    if d.status == "ok"))
            down = [n.id for n in [first.node, *first.downstream] if n is not None
                    and n.kind in ("model", "exposure")]
            exposures = first.exposures
        return list(dict.fromkeys([*failed, *down, *exposures]))

    def severity(self, root: Hyp, impacted: list[str]) -> str:
        kinds = self.issue.kinds()
        feeds = any(a.startswith("exposure.") for a in impacted)
        if root.category == "transient":
            return "SEV4"
        if kinds & {"task_failed", "model_error"} or root.category == "freshness":
            return "SEV2" if feeds else "SEV3"
        if kinds & {"test_failed", "table_check"}:
            return "SEV3"
        return "SEV1" if feeds else "SEV3"

    def code_change(self, root: Hyp, v: Verdict) -> dict[str, Any]:
        if root.category not in ("code_change", "config_change"):
            return {"needed": False}
        refs = [c["reference"] for claim in v.support for c in claim.get("citations", [])
                if c.get("kind") == "code"]
        sha = next((r.split("@")[1].split("#")[0] for r in refs if "@" in r), "")
        files = list(dict.fromkeys(r.split("@")[0] for r in refs)) or root.check["paths"]
        return {"needed": True, "files": files,
                "sketch": f"Revert the change of commit {sha or '(the one cited)'} in "
                          f"{', '.join(files)}:\n    git revert {sha or '<sha>'}\nthen "
                          "re-run the DAG; or restore the previous logic by hand and add a "
                          "test that would have caught it."}

    def unknown_report(self, why: str, book: Playbook | None = None) -> dict[str, Any]:
        issue = self.issue
        open_ = [f"Check: {h.text} ({h.node})" for h in (book.hyps if book else [])][:8]
        verdicts = self.verdicts() if book else {}
        rejected = [{"hypothesis": f"{h.text} ({h.node}, {h.category})",
                     "why": _after_verdict(verdicts[h.id].against[0])}
                    for h in (book.hyps if book else []) if h.id in verdicts
                    and verdicts[h.id].against][:12]
        asset = issue.asset if issue.asset and " " not in issue.asset else None
        return {
            "title": f"Unknown cause: {issue.title}"[:120],
            "summary": f"The offline policy could not establish a root cause: {why}. What was "
                       "checked and ruled out is below, with what to check next.",
            "what_happened": issue.summary or issue.title,
            "impacted_assets": [asset] if asset else [],
            "severity": issue.severity or "SEV3",
            "root_cause": {"node": None, "category": "unknown",
                           "explanation": f"Not established: {why}."},
            "confidence": 0.2,
            "evidence": [_claim(c) for v in verdicts.values() for c in v.against][:6],
            "rejected_hypotheses": rejected,
            "next_checks": open_ + ["Read the failing task's full log around the first error",
                                    "Ask the owner of the asset what changed upstream"],
        }


@dataclass
class Verdict:
    score: float = 0.0
    support: list[dict[str, Any]] = field(default_factory=list)
    against: list[dict[str, Any]] = field(default_factory=list)
    unsure: list[dict[str, Any]] = field(default_factory=list)


def _claims(done: Done) -> list[dict[str, Any]]:
    if isinstance(done.data, dict):
        return [c for c in done.data.get("claims") or [] if isinstance(c, dict)]
    # cut at the output limit: the verdicts still read, without their citations
    return [{"text": m[1], "citations": []}
            for m in re.finditer(r'"text": "((?:[^"\\]|\\.)*)"', done.raw)]


def _claim(claim: dict[str, Any]) -> dict[str, Any]:
    return {"text": claim.get("text", "")[:1000],
            "citations": [{k: c[k] for k in ("kind", "reference", "excerpt") if k in c}
                          for c in claim.get("citations", [])]}


def _after_verdict(claim: dict[str, Any]) -> str:
    text = claim.get("text", "")
    return re.sub(r"^H\d+ \w+(?: \(\w+\))?: ", "", text) or text


def _keywords(text: str) -> str:
    words = re.findall(r"[A-Za-z_][\w.]{2,}", text)
    stop = {"the", "and", "why", "what", "did", "does", "was", "were", "for", "with", "this",
            "that", "from", "today", "yesterday", "how", "are", "is"}
    return " ".join(w for w in words if w.lower() not in stop)[:200] or text[:200]


def _fix_source(h: Hyp) -> list[str]:
    return [f"Ask the owner of {h.node} to correct the delivery ({h.category.replace('_', ' ')})"
            " and re-deliver the affected partition",
            "Re-run the loader and the dbt build for the affected day",
            "Check the dashboard's numbers for that day once the build succeeds"]


FIX: dict[str, Any] = {
    "schema_change": lambda h: [f"Agree the new columns/format of {h.node} with its owner",
                                "Adapt the loader's select or the staging model's casts "
                                "to it (or have upstream restore it)",
                                "Re-run the failed tasks for the day"],
    "data_quality": _fix_source, "duplicate_data": lambda h: [
        f"Remove the duplicate delivery of {h.node} from the landing folder and reload the "
        "partition", "Re-run the dbt build for the day"],
    "freshness": lambda h: [f"Get the missing partition of {h.node} delivered (ask its owner)",
                            "Re-run the loader and the dbt build once it lands"],
    "semantic_change": _fix_source,
    "code_change": lambda h: [f"Revert or fix the commit to {h.node} (see the code change)",
                              "Rebuild the model and its downstream models"],
    "config_change": lambda h: [f"Revert or fix the config commit of {h.node}",
                                "Re-run the loader for the affected days"],
    "infrastructure": lambda h: [f"Give {h.node} the resources it needs (memory, time)",
                                 "Re-run the failed task"],
    "transient": lambda h: ["Nothing to fix: it recovered on retry"],
}
PREVENT: dict[str, Any] = {
    "schema_change": lambda h: ["A schema contract on the source (dbt contract or a column "
                                "check before loading)"],
    "data_quality": lambda h: ["A null-rate check on the raw table before the build"],
    "duplicate_data": lambda h: ["Make the loader idempotent per partition (dedupe on the "
                                 "key, or one file per day)"],
    "freshness": lambda h: ["Alert on a late delivery before the DAG runs"],
    "semantic_change": lambda h: ["A range/distribution check on the column's values"],
    "code_change": lambda h: ["A unit or uniqueness test on the model, run in CI"],
    "config_change": lambda h: ["Review loader config changes against a row-count check"],
    "infrastructure": lambda h: ["Track memory and duration of the task; alert before limits"],
    "transient": lambda h: ["Keep retries on the task"],
}


# ---------------------------------------------------------------- the specialists

class Specialist:
    """A subagent's playbook: run the context's checks with its tools, then submit findings."""

    def __init__(self, convo: Conversation, tools: set[str]) -> None:
        self.convo, self.tools = convo, tools
        first = convo.first
        self.context = _json_after(first, "What is known so far:")
        task = re.search(r"Task from the lead investigator: (.*)", first)
        self.task = task[1] if task else first[:200]

    def next_calls(self) -> list[tuple[str, dict[str, Any]]]:
        if "run_sql" in self.tools:
            return self.data()
        if "search_logs" in self.tools or "error_templates" in self.tools:
            return self.logs()
        if "git_log" in self.tools:
            return self.code()
        if "find_changes" in self.tools:
            return self.metrics()
        return self.submit([], "this specialist has no tools the offline policy knows")

    def submit(self, claims: list[dict[str, Any]], summary: str,
               checked: list[str] | None = None) -> list[tuple[str, dict[str, Any]]]:
        claims = [c for c in claims if c.get("citations")]
        if not claims:  # a finding needs a citation: cite what was asked instead
            claims = [{"text": f"Nothing to report: {summary}", "citations": [
                {"kind": "artifact", "reference": "offline-policy#no-data",
                 "excerpt": self.task[:EXCERPT]}]}]
        return [("submit_findings", {"findings": {"summary": summary, "claims": claims,
                                                  "checked": checked or []}})]

    def result(self, name: str, **match: Any) -> Done | None:
        for d in self.convo.called(name):
            if all(d.arguments.get(k) == v for k, v in match.items()):
                return d
        return None

    # -- data

    def data(self) -> list[tuple[str, dict[str, Any]]]:
        table = self.context.get("table")
        checks = self.context.get("checks") or []
        if not table or not checks:
            return self.submit([], "no table to check was given")
        schema = self.result("schema_of", table=table)
        if schema is None:
            return [("schema_of", {"table": table})]
        cols = [c for c in (schema.data or {}).get("columns", [])] if isinstance(
            schema.data, dict) else []
        if not cols:
            return self.submit([], f"{table} could not be read: {schema.raw[:200]}")
        tests = {c["test"] for c in checks}
        key = _key_column(table, [c["name"] for c in cols])
        numeric = [c["name"] for c in cols if any(t in c["type"].upper() for t in NUMERIC)
                   and not c["name"].endswith("_id") and not c["name"].startswith("_")][:3]
        wanted: list[tuple[str, dict[str, Any]]] = [("row_counts", {"table": table})]
        if "nulls" in tests:
            wanted.append(("null_rates", {"table": table}))
        part = next((p for p in PARTITIONS if p in {c["name"] for c in cols}), None)
        if "duplicates" in tests and key:
            wanted.append(_dup_query(table, key, part) if part else
                          ("key_uniqueness", {"table": table, "key": [key]}))
        if "distribution" in tests:
            wanted += [("compare_values", {"table": table, "column": c}) for c in numeric]
        missing = [(n, a) for n, a in wanted if self.result(n, **a) is None]
        if missing:
            return missing
        claims = [j for c in checks if (j := self.judge_data(c, table, key, part, numeric))]
        return self.submit(claims, f"Checked {table}: row counts, null rates, key uniqueness "
                           "and value distributions of its latest load.", [table])

    def judge_data(self, check: dict[str, Any], table: str, key: str | None,
                   part: str | None, numeric: list[str]) -> dict[str, Any] | None:
        hid, test = check["id"], check["test"]
        counts = self.result("row_counts", table=table)
        rows = _rows(counts)
        if test == "freshness":
            if counts is None or not rows:
                return _verdict(hid, "supported", f"{table} has no rows at all", counts)
            latest_day, latest = str(rows[0].get("partition")), rows[0].get("row_count") or 0
            median = _median([r.get("row_count") or 0 for r in rows[1:]])
            expected = self.context.get("failure_at", "")[:10]
            behind = _days_between(latest_day, expected)
            if behind is not None and behind >= 2:
                return _verdict(hid, "supported", f"the newest partition of {table} is "
                                f"{latest_day}, {behind} days before the failure on "
                                f"{expected}: the latest load is missing", counts)
            if median and latest < 0.5 * median:
                return _verdict(hid, "supported (weak)", f"{table} loaded {latest} rows on "
                                f"{latest_day}, under half its median {median:g}", counts)
            return _verdict(hid, "rejected", f"{table} has its partition {latest_day} with "
                            f"{latest} rows (median {median:g})", counts)
        if test == "nulls":
            done = self.result("null_rates", table=table)
            jumps = _null_jumps(_rows(done))
            if jumps:
                col, rate, before = jumps[0]
                return _verdict(hid, "supported", f"{table}.{col} is {rate:.1%} null in the "
                                f"latest load, against {before:.1%} before", done)
            return _verdict(hid, "rejected", f"no column of {table} has more nulls in the "
                            "latest load than before", done)
        if test == "duplicates" and key and part:
            name, args = _dup_query(table, key, part)
            return _judge_dups(hid, table, key, self.result(name, **args))
        if test == "duplicates":
            done = self.result("key_uniqueness", table=table, key=[key]) if key else None
            row = (_rows(done) or [{}])[0]
            dups = int(row.get("duplicated_keys") or 0)
            if done is None:
                return None
            if dups:
                grew = ""
                if rows and len(rows) > 1:
                    median = _median([r.get("row_count") or 0 for r in rows[1:]])
                    if median:
                        grew = f"; its latest load has {rows[0].get('row_count')} rows " \
                               f"against a median of {median:g}"
                return _verdict(hid, "supported", f"{table} has {dups} duplicated {key} "
                                f"values (up to {row.get('max_repeats')} rows each){grew}",
                                done)
            return _verdict(hid, "rejected", f"{key} is unique in {table}", done)
        if test == "distribution":
            found = []
            for col in numeric:
                done = self.result("compare_values", table=table, column=col)
                ratio = _mean_ratio(done)
                if ratio is not None and (ratio >= 5 or ratio <= 0.2):
                    found.append((col, ratio, done))
            if found:
                col, ratio, done = found[0]
                return _verdict(hid, "supported", f"the mean of {table}.{col} moved "
                                f"{ratio:.1f}x between the last two loads (same rows, new "
                                "scale)", done)
            done = self.result("compare_values", table=table, column=numeric[0]) \
                if numeric else counts
            return _verdict(hid, "rejected", f"the numeric columns of {table} "
                            f"({', '.join(numeric) or 'none'}) keep their scale", done)
        return None

    # -- logs

    def logs(self) -> list[tuple[str, dict[str, Any]]]:
        checks = [c for c in self.context.get("checks") or [] if c["category"] in LOG_PATTERNS]
        since = self.context.get("since")
        wanted = list(dict.fromkeys(
            (t, c["category"]) for c in checks for t in c.get("tasks", [])))
        calls = [("search_logs", {"task": t, "since": since, "pattern": LOG_PATTERNS[cat]})
                 for t, cat in wanted]
        missing = [(n, a) for n, a in calls if self.result(n, **a) is None]
        if missing:
            return missing
        # dbt names the failing model a few lines above its error: read them
        reads = {json.dumps(_before(line), sort_keys=True) for c in checks if c.get("models")
                 for t in c.get("tasks", []) if "dbt" in t
                 for line in self.lines(t, c["category"], since)[:2]}
        missing = [("read_log", args) for args in map(json.loads, sorted(reads))
                   if self.result("read_log", **args) is None]
        if missing and "read_log" in self.tools:
            return missing
        claims = [j for c in checks if (j := self.judge_logs(c, since))]
        tasks = list(dict.fromkeys(t for t, _ in wanted))
        return self.submit(claims, f"Searched the logs of {', '.join(tasks)} since {since} "
                           "for schema errors, memory and timeouts.", tasks)

    def judge_logs(self, check: dict[str, Any], since: str | None) -> dict[str, Any] | None:
        category = check["category"]
        models = check.get("models") or []
        hits, seen = [], []
        for task in check.get("tasks", []):
            done = self.result("search_logs", task=task, since=since,
                               pattern=LOG_PATTERNS[category])
            if done is None:
                continue
            seen.append(task)
            for line in self.lines(task, category, since):
                text = str(line.get("text", ""))
                # a dbt run logs every model: there, an error counts for a source only when
                # it (or the lines just before it) names a model that reads the source
                around = self.result("read_log", **_before(line))
                near = text + (str(around.data.get("text", "")) if around and
                               isinstance(around.data, dict) else "")
                if models and "dbt" in task and not any(m in near for m in models):
                    continue
                hits.append((task, text, line, done))
        if hits:
            task, text, line, done = hits[0]
            cite = [c for c in done.citations if c.get("reference") == line.get("at")] or \
                done.citations[:1]
            return {"text": f"{check['id']} supported: {task} logged \"{text[-240:]}\" at "
                            f"{line.get('time')} ({len(hits)} matching lines)",
                    "citations": [_short(c) for c in cite]}
        if not seen:
            return None
        return {"text": f"{check['id']} rejected: no {category.replace('_', ' ')} error in "
                        f"the logs of {', '.join(seen)} since {since}",
                "citations": [{"kind": "map", "reference": f"map:{check.get('node')}",
                               "excerpt": f"search_logs {', '.join(seen)} "
                                          f"/{LOG_PATTERNS[category]}/: no match"}]}

    def lines(self, task: str, category: str, since: str | None) -> list[dict[str, Any]]:
        done = self.result("search_logs", task=task, since=since, pattern=LOG_PATTERNS[category])
        if done is None or not isinstance(done.data, dict):
            return []
        return [x for x in done.data.get("lines", []) if isinstance(x, dict) and "#L" in
                str(x.get("at", ""))]

    # -- code

    def code(self) -> list[tuple[str, dict[str, Any]]]:
        checks = self.context.get("checks") or []
        paths = sorted({p for c in checks for p in c.get("paths", [])})
        if not paths:
            return self.submit([], "no code path to check was given")
        since, until = self.context.get("since"), self.context.get("until")
        log = self.result("git_log", paths=paths)
        if log is None:
            return [("git_log", {"paths": paths, "since": since, "until": until})]
        commits = (log.data or {}).get("commits", []) if isinstance(log.data, dict) else []
        shows = [("git_show", {"sha": c["sha"], "path": f}) for c in commits[:4]
                 for f in c.get("files", []) if f in paths]
        missing = [(n, a) for n, a in shows if self.result(n, **a) is None]
        if missing:
            return missing
        claims = []
        for check in checks:
            mine = [c for c in commits if set(c.get("files", [])) & set(check["paths"])]
            if mine:
                c = mine[0]
                path = next(f for f in c["files"] if f in check["paths"])
                show = self.result("git_show", sha=c["sha"], path=path)
                cites = (show.citations if show else [])[:2] or log.citations[:1]
                claims.append({"text": f"{check['id']} supported: commit {c['sha']} by "
                                       f"{c.get('author')} on {c.get('date')} changed {path} "
                                       f"in the window: \"{c.get('summary')}\"",
                               "citations": [_short(x) for x in cites]})
            else:
                claims.append({"text": f"{check['id']} rejected: no commit to "
                                       f"{', '.join(check['paths'])} between {since} and "
                                       f"{until}",
                               "citations": [{"kind": "map",
                                              "reference": f"map:{check.get('node') or p}",
                                              "excerpt": f"git log {p}: no commit in the window"}
                                             for p in check["paths"][:1]]})
        return self.submit(claims, f"{len(commits)} commit(s) in the window to "
                           f"{len(paths)} upstream paths.", paths)

    # -- metrics

    def metrics(self) -> list[tuple[str, dict[str, Any]]]:
        tables = self.context.get("tables") or []
        since = self.context.get("since")
        at = self.context.get("failure_at")
        start = (_time(at) - timedelta(days=14)).isoformat() if at and _time(at) else since
        queries = []
        for table in tables:
            schema, _, name = table.partition(".")
            queries.append(f'rows_loaded{{source="{schema.removeprefix("raw_")}",'
                           f'table="{name}"}}')
        wanted = [("find_changes", {"query": q, "since": start, "until": self.context.get(
            "until")}) for q in queries]
        missing = [(n, a) for n, a in wanted if self.result(n, **a) is None]
        if missing:
            return missing
        claims = []
        for name, args in wanted:
            done = self.result(name, **args)
            if done is None or done.status != "ok" or not done.citations:
                continue
            claims.append({"text": f"{_summary(done)}", "citations": [_short(c) for c in
                                                                       done.citations[:1]]})
        return self.submit(claims, "Rows loaded per upstream table, for spikes and drops.",
                           tables)


def _before(line: dict[str, Any], lines: int = 6) -> dict[str, Any]:
    """read_log's arguments for the lines just before a hit (where dbt names the model)."""
    file, _, at = str(line.get("at", "")).rpartition("#L")
    end = int(at) if at.isdigit() else 1
    return {"file": file, "start": max(1, end - lines), "end": end}


def _dup_query(table: str, key: str, partition: str) -> tuple[str, dict[str, Any]]:
    """Distinct keys per partition: a key repeated inside one load, not across loads (a daily
    snapshot repeats every key across days)."""
    quoted = ".".join(_quote(p) for p in table.split("."))
    p = _quote(partition)
    return ("run_sql", {"sql": f"SELECT {p} AS partition, COUNT(*) AS row_count, "
                               f"COUNT(DISTINCT {_quote(key)}) AS distinct_keys FROM {quoted} "
                               "GROUP BY 1 ORDER BY 1 DESC LIMIT 7"})


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _judge_dups(hid: str, table: str, key: str, done: Done | None) -> dict[str, Any] | None:
    rows = _rows(done)
    if not rows:
        return _verdict(hid, "inconclusive", f"{table} returned no partitions", done)
    dups = [int(r.get("row_count") or 0) - int(r.get("distinct_keys") or 0) for r in rows]
    latest, before = dups[0], _median(dups[1:])
    day = rows[0].get("partition")
    if latest > 0 and latest > 2 * before and latest >= 0.01 * (rows[0].get("row_count") or 1):
        return _verdict(hid, "supported", f"the latest load of {table} ({day}) repeats "
                        f"{latest} {key} values ({rows[0].get('row_count')} rows, "
                        f"{rows[0].get('distinct_keys')} distinct; {before:g} before)", done)
    return _verdict(hid, "rejected", f"{key} is unique within each load of {table} "
                    f"(latest {day}: {latest} repeats)", done)


def _verdict(hid: str, verdict: str, text: str, done: Done | None) -> dict[str, Any] | None:
    if done is None or not done.citations:
        return None
    return {"text": f"{hid} {verdict}: {text}", "citations": [_short(done.citations[0])]}


def _short(citation: dict[str, Any]) -> dict[str, Any]:
    return {"kind": citation.get("kind"), "reference": citation.get("reference"),
            "excerpt": str(citation.get("excerpt") or "")[:EXCERPT]}


def _summary(done: Done) -> str:
    body = _parse(done.raw)
    return str(body.get("summary") or done.name)


def _rows(done: Done | None) -> list[dict[str, Any]]:
    if done is None or not isinstance(done.data, dict):
        return []
    cols = done.data.get("columns") or []
    return [dict(zip(cols, r, strict=False)) for r in done.data.get("rows") or []]


def _median(values: list[float]) -> float:
    if not values:
        return 0.0
    s = sorted(values)
    mid = len(s) // 2
    return float(s[mid]) if len(s) % 2 else (s[mid - 1] + s[mid]) / 2


def _days_between(day: str, later: str) -> int | None:
    try:
        return (datetime.fromisoformat(later[:10]) - datetime.fromisoformat(day[:10])).days
    except ValueError:
        return None


def _null_jumps(rows: list[dict[str, Any]], min_jump: float = 0.05
                ) -> list[tuple[str, float, float]]:
    if len(rows) < 2:
        return []
    latest, rest = rows[0], rows[1:]
    out = []
    for col, rate in latest.items():
        if col in ("partition", "row_count") or not isinstance(rate, int | float):
            continue
        before = _median([r.get(col) or 0.0 for r in rest])
        if rate - before >= min_jump:
            out.append((col, float(rate), before))
    return sorted(out, key=lambda x: x[2] - x[1])


def _mean_ratio(done: Done | None) -> float | None:
    rows = _rows(done)
    if len(rows) < 2:
        return None
    a, b = rows[0].get("mean"), rows[-1].get("mean")
    if not isinstance(a, int | float) or not isinstance(b, int | float) or not a:
        return None
    return b / a


def _key_column(table: str, columns: list[str]) -> str | None:
    """The table's natural key: `<entity>_id` for a table named after its entity."""
    stem = table.split(".")[-1].lower()
    singular = stem[:-3] + "y" if stem.endswith("ies") else stem.rstrip("s")
    for name in (f"{singular}_id", f"{stem}_id", "id"):
        if name in columns:
            return name
    return None
