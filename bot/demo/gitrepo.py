"""The platform's code as a real git repository, with the history a small data team leaves.

`build_history` replays the shipped project as ~20 commits by five people over the two months
before the first DAG run: the dbt skeleton, staging per source, intermediate models, marts,
tests, the dashboard exposure, loader configs, the DAG, then a few follow-up commits that
turn an earlier version of a file into the shipped one. The last tree is exactly the shipped
project (plus a `.gitignore` if it has none). Dates and authors are fixed, so the same
inputs give the same shas. `commit_change` is how scenarios land their commits afterwards.
"""

from __future__ import annotations

import fnmatch
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Protocol

from git import Actor, Repo

from bot.demo.paths import shipped_project

GITIGNORE = "target/\nlogs/\ndbt_packages/\n"
_NOT_CODE = {"target", "logs", "dbt_packages", "__pycache__", ".git"}
HISTORY_DAYS = 60  # the first commit is about this many days before the first run


@dataclass(frozen=True)
class Author:
    name: str
    email: str
    tz: str = "+0000"  # where they commit from, as git records it

    def actor(self) -> Actor:
        return Actor(self.name, self.email)


TEAM = {
    "maya": Author("Maya Chen", "maya.chen@example.com", "-0700"),
    "priya": Author("Priya Raman", "priya.raman@example.com", "+0100"),
    "diego": Author("Diego Alvarez", "diego.alvarez@example.com", "-0500"),
    "tomasz": Author("Tomasz Nowak", "tomasz.nowak@example.com", "+0200"),
    "jordan": Author("Jordan Blake", "jordan.blake@example.com", "-0400"),
}


class Edit(Protocol):
    """A change to one file (bot.demo.edits.FileEdit has this shape)."""

    path: str

    def apply(self, repo: Path) -> None: ...


# ---------------------------------------------------------------- the history, as data


@dataclass(frozen=True)
class Step:
    """A commit adding the files matching `globs` not taken by an earlier step."""

    author: str
    message: str
    globs: tuple[str, ...]


@dataclass(frozen=True)
class Tweak:
    """A later commit: files first land with `earlier` text, this commit makes them final.

    `replace` holds (path, final text, earlier text); `drop_lines` (path, regex) removes lines
    from the earlier version; `adds` are files that first appear in this commit. A tweak
    whose text is not in the shipped files is left out, so the history follows the project.
    """

    author: str
    message: str
    replace: tuple[tuple[str, str, str], ...] = ()
    drop_lines: tuple[tuple[str, str], ...] = ()
    adds: tuple[str, ...] = ()


STEPS = (
    Step(
        "maya",
        "Initial dbt project for the warehouse\n\nDuckDB target; models go to one schema "
        "per layer (staging, intermediate, marts)\ninstead of dbt's <target>_<custom> names.",
        ("dbt_project.yml", "packages.yml", "macros/*", ".gitignore", "README.md"),
    ),
    Step("maya", "Add non_negative generic test", ("tests/generic/*",)),
    Step("maya", "Add shop sources and staging models", ("models/staging/shop/*",)),
    Step(
        "priya",
        "Add payments sources and staging models\n\nPayment attempts and refunds from "
        "the PSP's nightly JSON exports.",
        ("models/staging/payments/*",),
    ),
    Step("diego", "Add marketing sources and staging models", ("models/staging/marketing/*",)),
    Step("maya", "Add commerce intermediate models", ("models/intermediate/commerce/*",)),
    Step("diego", "Add last-touch campaign attribution", ("models/intermediate/marketing/*",)),
    Step(
        "maya",
        "Add commerce marts: fct_orders, dim_customers, dim_products",
        ("models/marts/commerce/*",),
    ),
    Step(
        "priya",
        "Add finance marts: fct_payments and fct_daily_revenue\n\nRevenue as finance "
        "reports it: orders on the day they were placed,\nrefunds on the day they were issued.",
        ("models/marts/finance/*",),
    ),
    Step("diego", "Add fct_marketing_performance", ("models/marts/marketing/*",)),
    Step(
        "priya",
        "Add reconciliation tests for daily revenue and order totals",
        ("tests/assert_daily_revenue*", "tests/assert_order_totals*"),
    ),
    Step("priya", "Add payment and refund consistency tests", ("tests/*",)),
    Step("maya", "Add revenue dashboard exposure", ("models/*exposure*", "models/*/*exposure*")),
    Step("tomasz", "Add loader configs for the shop exports", ("loaders/shop_*",)),
    Step("tomasz", "Add loader configs for payments and marketing", ("loaders/*",)),
    Step(
        "tomasz",
        "Add daily_warehouse DAG\n\nLoads, then dbt build, then the dashboard extract; "
        "source freshness\nonly on the latest run.",
        ("dags/*",),
    ),
    Step("maya", "Add remaining project files", ("*",)),  # catch-all, normally empty
)

_SOURCES_YML = "models/staging/{0}/_{0}__sources.yml"

TWEAKS = (
    Tweak(
        "maya",
        "Assign model groups and owners per domain\n\nOwners and Slack channels live "
        "in dbt metadata now, so alerts can\nbe routed to the team that owns the model.",
        drop_lines=(("dbt_project.yml", r"^\s+\+(group|meta):"),),
        adds=("models/_groups.yml",),
    ),
    Tweak(
        "priya",
        "Materialize intermediate models as tables\n\nint_orders_enriched feeds three "
        "marts; as a view it was computed\nonce per mart.",
        replace=(
            (
                "dbt_project.yml",
                "    intermediate:\n      +materialized: table\n",
                "    intermediate:\n      +materialized: view\n",
            ),
        ),
    ),
    Tweak(
        "priya",
        "Count only the successful charge per order\n\nA declined card is retried, so "
        "an order can have several payment\nattempts. Joining all of them duplicated orders in "
        "fct_orders\n(unique_fct_orders_order_id failed on 14 orders).",
        drop_lines=(
            (
                "models/intermediate/commerce/int_orders_enriched.sql",
                r"^-- (a declined card is retried|that went through)"
                r"|^\s+where payment_status = 'succeeded'$",
            ),
        ),
    ),
    Tweak(
        "tomasz",
        "shop_orders: skip QA test orders\n\nOnly the web checkout sets is_test; app "
        "orders leave it empty,\nhence the coalesce.",
        drop_lines=(("loaders/shop_orders.yml", r"^# Skip QA test orders|^filter: coalesce"),),
    ),
    Tweak(
        "jordan",
        "Tighten source freshness to 12h warn / 18h error\n\nDeliveries land by 01:00 "
        "UTC; a day late should page before\nfinance opens the dashboard.",
        replace=tuple(
            (
                _SOURCES_YML.format(source),
                f"{key}: {{count: {now}, period: hour}}",
                f"{key}: {{count: {before}, period: hour}}",
            )
            for source in ("shop", "payments", "marketing")
            for key, now, before in (("warn_after", 12, 24), ("error_after", 18, 48))
        ),
    ),
    Tweak(
        "tomasz",
        "daily_warehouse: retry tasks twice\n\nThe payments API resets connections a "
        "few nights a week and one\nretry was not always enough.",
        replace=(
            (
                "dags/daily_warehouse.yml",
                "    retries: 2\n    retry_delay_sec: 300\n",
                "    retries: 1\n    retry_delay_sec: 300\n",
            ),
        ),
    ),
)


# ---------------------------------------------------------------- planning


@dataclass
class _Commit:
    author: Author
    message: str
    files: dict[str, bytes] = field(default_factory=dict)


def project_files(source: Path) -> dict[str, bytes]:
    """The shipped project's files by repo path, without build output."""
    files = {}
    for path in sorted(source.rglob("*")):
        rel = path.relative_to(source)
        if path.is_file() and not _NOT_CODE & set(rel.parts) and path.suffix != ".pyc":
            files[rel.as_posix()] = path.read_bytes()
    files.setdefault(".gitignore", GITIGNORE.encode())
    return files


def _touched(tweak: Tweak) -> list[str]:
    return list(dict.fromkeys([p for p, _, _ in tweak.replace] + [p for p, _ in tweak.drop_lines]))


def _undo(tweak: Tweak, path: str, text: str) -> str:
    """The text `path` had before `tweak` landed."""
    for p, new, old in tweak.replace:
        if p == path:
            text = text.replace(new, old)
    for p, pattern in tweak.drop_lines:
        if p == path:
            lines = [line for line in text.splitlines(keepends=True) if not re.match(pattern, line)]
            text = "".join(_prune_empty_keys(lines) if path.endswith(".yml") else lines)
    return text


def _prune_empty_keys(lines: list[str]) -> list[str]:
    """Drop YAML keys left without children (`shop:` once its settings were removed)."""

    def indent(line: str) -> int:
        return len(line) - len(line.lstrip())

    while True:
        kept = []
        for i, line in enumerate(lines):
            following = next((n for n in lines[i + 1 :] if n.strip()), "")
            if re.match(r"^\s*[\w-]+:\s*$", line) and indent(following) <= indent(line):
                continue
            kept.append(line)
        if len(kept) == len(lines):
            return kept
        lines = kept


def _fits(tweak: Tweak, final: dict[str, bytes]) -> bool:
    """Whether the shipped files hold the text the tweak introduces (exactly once)."""
    for path, new, _ in tweak.replace:
        if final.get(path, b"").decode().count(new) != 1:
            return False
    for path, pattern in tweak.drop_lines:
        lines = final.get(path, b"").decode().splitlines()
        if not any(re.match(pattern, line) for line in lines):
            return False
    return all(a in final for a in tweak.adds)


def plan_history(final: dict[str, bytes]) -> list[_Commit]:
    """Stage commits with each file as it was before any tweak, then the tweaks in order."""
    tweaks = [t for t in TWEAKS if _fits(t, final)]

    def version(path: str, after: int) -> bytes:
        """`path` once the first `after` tweaks landed."""
        text = final[path].decode()
        for tweak in reversed(tweaks[after:]):
            text = _undo(tweak, path, text)
        return text.encode()

    withheld = {a for t in tweaks for a in t.adds}
    remaining = [p for p in final if p not in withheld]
    commits = []
    for step in STEPS:
        taken = [p for p in remaining if any(fnmatch.fnmatch(p, g) for g in step.globs)]
        remaining = [p for p in remaining if p not in taken]
        if taken:
            commits.append(
                _Commit(TEAM[step.author], step.message, {p: version(p, 0) for p in taken})
            )
    for i, tweak in enumerate(tweaks, start=1):
        paths = [*_touched(tweak), *tweak.adds]
        commits.append(
            _Commit(TEAM[tweak.author], tweak.message, {p: version(p, i) for p in paths})
        )
    return commits


def commit_times(commits: Sequence[_Commit], first_run: date) -> list[datetime]:
    """Working hours on weekdays, spread over HISTORY_DAYS before the first run, increasing."""
    times: list[datetime] = []
    start = first_run - timedelta(days=HISTORY_DAYS)
    span = HISTORY_DAYS - 3
    for i, commit in enumerate(commits):
        digest = hashlib.sha256(commit.message.encode()).digest()
        day = start + timedelta(days=round(i * span / max(len(commits) - 1, 1)))
        while day.weekday() >= 5:
            day -= timedelta(days=1)
        tz = _tz(commit.author.tz)
        local = datetime.combine(day, time(9 + digest[0] % 9, digest[1] % 60, digest[2] % 60), tz)
        if times and local <= times[-1]:
            local = times[-1] + timedelta(minutes=23 + digest[3] % 90)
        times.append(local)
    return times


def _tz(offset: str) -> timezone:
    sign = -1 if offset.startswith("-") else 1
    return timezone(sign * timedelta(hours=int(offset[1:3]), minutes=int(offset[3:5])))


def _git_date(moment: datetime) -> str:
    """git's internal date format: seconds since the epoch and the author's UTC offset."""
    if moment.tzinfo is None:
        raise ValueError("commit times must be timezone-aware")
    offset = moment.utcoffset() or timedelta(0)
    minutes = int(offset.total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    return f"{int(moment.timestamp())} {sign}{abs(minutes) // 60:02d}{abs(minutes) % 60:02d}"


# ---------------------------------------------------------------- writing git


def build_history(repo: Path, *, first_run: date, source: Path | None = None) -> str:
    """Create `repo` from the shipped project with its history; returns the head sha."""
    if repo.exists() and any(repo.iterdir()):
        raise FileExistsError(f"{repo} is not empty; the history is built into a new folder")
    final = project_files(source or shipped_project())
    commits = plan_history(final)
    git_repo = Repo.init(repo, initial_branch="main")
    sha = ""
    for commit, when in zip(commits, commit_times(commits, first_run), strict=True):
        for rel, content in commit.files.items():
            (repo / rel).parent.mkdir(parents=True, exist_ok=True)
            (repo / rel).write_bytes(content)
        sha = _commit(git_repo, sorted(commit.files), commit.author, commit.message, when)
    return sha


def commit_change(
    repo: Path,
    edits: Sequence[Edit],
    *,
    author: Author | tuple[str, str],
    message: str,
    when: datetime,
) -> str:
    """Apply `edits` to the work tree and commit them as `author` at `when`; returns the sha."""
    if not edits:
        raise ValueError("nothing to commit: no edits")
    if when.tzinfo is None:  # checked before the work tree changes
        raise ValueError("commit times must be timezone-aware")
    who = author if isinstance(author, Author) else Author(*author)
    for edit in edits:
        edit.apply(repo)
    return _commit(Repo(repo), sorted({e.path for e in edits}), who, message, when)


def _commit(git_repo: Repo, paths: list[str], author: Author, message: str, when: datetime) -> str:
    if when.tzinfo is None:
        raise ValueError("commit times must be timezone-aware")
    stamp = _git_date(when)
    git_repo.index.add(paths)
    text = message if message.endswith("\n") else message + "\n"
    commit = git_repo.index.commit(
        text, author=author.actor(), committer=author.actor(), author_date=stamp, commit_date=stamp
    )
    return commit.hexsha
