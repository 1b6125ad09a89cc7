"""Filing a kept signal under one issue per root problem.

In order, the first that holds wins:
1. **Fingerprint**: the same problem at the same asset (kind + masked message + asset, see
   `signal_fingerprint`) joins the issue that fingerprint already belongs to. A resolved
   issue whose problem comes back is reopened: its history is the first thing on-call needs.
2. **Similarity**: the signal's text is close (cosine ≥ threshold) to an open issue's, and
   their assets do not contradict it (the same asset, connected in the system map, or one
   of them unknown to the map): the same error reported by another source or worded
   differently.
3. **Lineage**: an open issue seen within the window sits upstream of the signal's asset
   (a downstream symptom), downstream of it (the signal is closer to the root: the issue's
   root moves up), at the same asset, or both sit close below one dbt model (a fan-out
   in that model fails checks of two of its children: the model becomes the root).
4. Otherwise the signal opens a new issue.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

from sqlmodel import Session, col, select

from bot.intake.masking import Masker
from bot.intake.templates import fingerprint, template_id
from bot.store.models import Issue, IssueStatus, Signal, as_utc
from bot.systemmap import SystemMap

# The provisional severity intake gives an issue from its signals (the investigation's report
# decides the final one): a stopped pipeline blocks consumers; a failed check is contained.
_KIND_SEVERITY = {
    "task_failed": "SEV2", "model_error": "SEV2", "source_stale": "SEV2",
    "test_failed": "SEV3", "table_check": "SEV3", "metric_anomaly": "SEV3",
    "log_error": "SEV3", "test_warned": "SEV4", "task_retried": "SEV4",
}
# A log line says how something failed; a failed task or test says what failed: the better title.
# A failed model or test names the data that broke; a failed task, often only the job.
_TITLE_RANK = {"log_error": 0, "task_retried": 0, "metric_anomaly": 1, "table_check": 1,
               "test_warned": 1, "task_failed": 2, "test_failed": 3, "source_stale": 3,
               "model_error": 3}
_MASKER = Masker()


class SimilarIssues(Protocol):
    """The open issues' texts, searchable by meaning (a vector index)."""

    def nearest(self, text: str, k: int) -> list[tuple[int, float]]:
        """(issue id, cosine similarity) of the closest open issues, best first."""
        ...

    def remember(self, issue_id: int, text: str) -> None: ...

    def forget(self, issue_id: int) -> None: ...


@dataclass(frozen=True)
class GroupingSettings:
    similarity_threshold: float = 0.9
    lineage_window: timedelta = timedelta(hours=12)
    default_channel: str = "#data-alerts"


@dataclass(frozen=True)
class Placement:
    issue: Issue
    created: bool
    reopened: bool
    reason: str


def signal_fingerprint(signal: Signal) -> str:
    """Kind + the message with its variable parts masked, at the signal's asset."""
    basis = _basis(signal.kind, signal.detail, signal.title)
    return fingerprint(template_id(f"{signal.kind}|{_MASKER.mask(basis)}"), signal.asset)


def signal_text(signal: Signal, system: SystemMap) -> str:
    """What similarity compares: kind, asset and message, in words."""
    return f"{signal.kind.replace('_', ' ')} {system.display_name(signal.asset)}: {signal.title}"


def _basis(kind: str, detail: dict[str, Any], title: str) -> str:
    """The part of a signal that says what went wrong, without where or how much."""
    if kind in ("test_failed", "test_warned", "source_stale"):
        return kind  # the asset (the test, the source) is the problem's identity
    if kind == "metric_anomaly":
        return f"{detail.get('metric') or detail.get('watch') or ''} {detail.get('direction', '')}"
    if kind == "table_check":
        return f"{detail.get('check', '')} {detail.get('column') or ''}"
    for key in ("exception", "error", "error_line", "message"):
        if isinstance(detail.get(key), str) and detail[key].strip():
            return detail[key].strip().splitlines()[0]
    return title


class Grouper:
    """Places signals into issues; see the module docstring."""

    def __init__(self, system: SystemMap, settings: GroupingSettings | None = None,
                 similar: SimilarIssues | None = None) -> None:
        self.system = system
        self.settings = settings or GroupingSettings()
        self.similar = similar

    def place(self, session: Session, signal: Signal) -> Placement:
        signal.fingerprint = signal.fingerprint or signal_fingerprint(signal)
        found = (self._by_fingerprint(session, signal) or self._by_similarity(session, signal)
                 or self._by_lineage(session, signal))
        if found is None:
            return self._open(session, signal)
        issue, reason = found
        reopened = issue.status == IssueStatus.resolved
        self._add(issue, signal, reopened)
        if reopened and self.similar is not None:
            self.similar.remember(issue.id or 0, signal_text(signal, self.system))
        return Placement(issue, created=False, reopened=reopened, reason=reason)

    # ------------------------------------------------------------ the three joins

    def _by_fingerprint(self, session: Session, signal: Signal) -> tuple[Issue, str] | None:
        issue = session.exec(select(Issue).where(Issue.fingerprint == signal.fingerprint)).first()
        if issue is None:
            issue = session.exec(
                select(Issue).join(Signal, col(Signal.issue_id) == col(Issue.id))
                .where(Signal.fingerprint == signal.fingerprint)
                .order_by(col(Issue.last_seen).desc())).first()
        if issue is None:
            return None
        return issue, f"fingerprint: same problem as issue #{issue.id}"

    def _by_similarity(self, session: Session, signal: Signal) -> tuple[Issue, str] | None:
        if self.similar is None:
            return None
        for issue_id, similarity in self.similar.nearest(signal_text(signal, self.system), 5):
            if similarity < self.settings.similarity_threshold:
                break
            issue = session.get(Issue, issue_id)
            if issue is not None and issue.status != IssueStatus.resolved \
                    and self._compatible(signal.asset, issue):
                return issue, f"similarity {similarity:.2f} to issue #{issue.id}"
        return None

    def _compatible(self, asset: str, issue: Issue) -> bool:
        if asset not in self.system or issue.asset not in self.system:
            return True
        return any(a == asset or self.system.upstream_of(a, asset)
                   or self.system.upstream_of(asset, a) for a in issue.assets or [issue.asset])

    def _by_lineage(self, session: Session, signal: Signal) -> tuple[Issue, str] | None:
        window = self.settings.lineage_window
        candidates = session.exec(
            select(Issue).where(Issue.status != IssueStatus.resolved,
                                col(Issue.last_seen) >= signal.observed_at - window,
                                col(Issue.first_seen) <= signal.observed_at + window)
            .order_by(col(Issue.last_seen).desc())).all()
        stale = _is_stale(signal)
        related = [(issue, how) for issue in candidates
                   if (how := self._relation(issue.asset, signal.asset, stale)) is not None]
        if not related:
            return None
        issue, how = min(related, key=lambda pair: self._rank(session, pair[0], signal))
        root = self.system.display_name(issue.asset)
        if how == "upstream":
            self._move_root(issue, signal.asset)  # the signal is closer to the root
            return issue, f"lineage: upstream of issue #{issue.id}'s root {root}; now its root"
        if how == "downstream":
            return issue, f"lineage: downstream of issue #{issue.id}'s root {root}"
        if how.startswith("task."):  # stale: the task that rebuilds it waits for the root
            if how == issue.asset:
                return issue, f"lineage: not refreshed by issue #{issue.id}'s root {root}"
            return issue, (f"lineage: not refreshed by {self.system.display_name(how)}, which "
                           f"runs after issue #{issue.id}'s root {root}")
        if how.startswith("model."):
            self._move_root(issue, how)  # both sit below it: the likelier root
            return issue, (f"lineage: shares upstream {self.system.display_name(how)} with "
                           f"issue #{issue.id}'s {root}; now its root")
        return issue, f"lineage: same asset as issue #{issue.id}"

    def _move_root(self, issue: Issue, root: str) -> None:
        issue.asset = root
        issue.channel = self.system.channel(root) or issue.channel  # the root's owners decide

    def _relation(self, root: str, asset: str, stale: bool = False) -> str | None:
        """How `asset` relates to an issue rooted at `root`: the same asset, downstream,
        upstream, (stale) built by a task that runs after the root, or below a shared
        model; None if unrelated."""
        root, asset = self.system.subject(root), self.system.subject(asset)
        if root == asset:
            return "same asset"
        if self.system.upstream_of(root, asset):
            return "downstream"
        if stale:
            # Data not refreshed: the task that rebuilds it is the failed root, or waits for
            # it (dbt after the loads), though the data itself reads nothing of the root. A
            # consequence, so before `upstream` (a model sits above the task that runs dbt).
            for builder in self.system.builders(asset):
                if builder == root or self.system.upstream_of(root, builder):
                    return builder
        if self.system.upstream_of(asset, root):
            return "upstream"
        return self.system.shared_upstream(root, asset)

    def _rank(self, session: Session, issue: Issue, signal: Signal) -> tuple[int, float]:
        """Prefer the issue with a signal of the same run, then the most recently seen."""
        same_run = signal.run_id is not None and session.exec(
            select(Signal.id).where(Signal.issue_id == issue.id, Signal.run_id == signal.run_id)
        ).first() is not None
        return (0 if same_run else 1, -issue.last_seen.timestamp())

    # ------------------------------------------------------------ writing

    def _open(self, session: Session, signal: Signal) -> Placement:
        issue = Issue(
            fingerprint=signal.fingerprint or "", title=signal.title[:300],
            severity=severity_of([signal.kind]), asset=signal.asset, kind=signal.kind,
            assets=[signal.asset],
            channel=self.system.channel(signal.asset) or self.settings.default_channel,
            occurrences=1, first_seen=signal.observed_at, last_seen=signal.observed_at,
        )
        session.add(issue)
        session.flush()
        if self.similar is not None:
            self.similar.remember(issue.id or 0, signal_text(signal, self.system))
        return Placement(issue, created=True, reopened=False, reason="new issue")

    def _add(self, issue: Issue, signal: Signal, reopened: bool) -> None:
        issue.occurrences += 1
        issue.first_seen = min(as_utc(issue.first_seen), as_utc(signal.observed_at))
        issue.last_seen = max(as_utc(issue.last_seen), as_utc(signal.observed_at))
        if signal.asset not in issue.assets:
            issue.assets = [*issue.assets, signal.asset]
        issue.severity = min(issue.severity, severity_of([signal.kind]))  # "SEV1" < "SEV2"
        if _TITLE_RANK.get(signal.kind, 1) > _TITLE_RANK.get(issue.kind, 1):
            issue.title, issue.kind = signal.title[:300], signal.kind  # say what failed, not a log line
        if reopened:
            issue.status, issue.resolved_at = IssueStatus.open, None


def _is_stale(signal: Signal) -> bool:
    """A symptom of data not refreshed: a freshness check or a stale source."""
    return signal.kind == "source_stale" or (
        signal.kind == "table_check" and (signal.detail or {}).get("check") == "freshness")


def severity_of(kinds: Sequence[str]) -> str:
    return min((_KIND_SEVERITY.get(k, "SEV3") for k in kinds), default="SEV3")
