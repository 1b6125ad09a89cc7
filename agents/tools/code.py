"""Code tools: git log, show, diff, blame and file reads over the pipeline's repository.

Limited to the files the system map names (dbt models and their YAML, loader configs, the DAG
file) and to a time window for the history, so a subagent looks where the incident can be.
Citations are `path@sha#Lstart-Lend` with the short sha (12 characters).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated

from pydantic import Field

from agents.tools.base import Tool, ToolOutput
from agents.tools.common import cite, clip, fail, iso, make_tool, utc
from agents.world import CodeRepo, Commit

SHORT = 12
MAX_CITED = 5
_HUNK = re.compile(r"^@@ -\d+(?:,\d+)? \+(\d+)(?:,(\d+))? @@", re.MULTILINE)
_FILE = re.compile(r"^diff --git a/(\S+) b/(\S+)$", re.MULTILINE)

Paths = Annotated[list[str], Field(description="Repository paths (files or folders ending "
                                               "in /); default every path the map names.")]
Sha = Annotated[str, Field(min_length=7, max_length=40, pattern=r"^[0-9a-f]+$",
                           description="A commit sha (7 or more hex digits).")]


def code_tools(repo: CodeRepo, allowed_paths: Sequence[str], *, window_days: int = 90,
               max_commits: int = 30, max_diff_chars: int = 8_000, max_file_lines: int = 300,
               known_secrets: Iterable[str] = ()) -> list[Tool]:
    """The code subagent's tools over `repo`, limited to `allowed_paths` (files, or folders
    ending in `/`) and to `window_days` of history."""
    allowed = _Allowed(allowed_paths)

    def git_log(paths: Paths | None = None, since: datetime | None = None,
                until: datetime | None = None) -> ToolOutput:
        """Commits that touched the given paths in a time window, newest first: what changed
        in the pipeline's code or config before the incident. Default window: 30 days."""
        if (refused := allowed.refuse(paths or [])) is not None:
            return refused
        end = utc(until) or datetime.now(UTC)
        start = utc(since) or end - timedelta(days=30)
        start = max(start, end - timedelta(days=window_days))
        commits = repo.log(list(paths or allowed.paths), start, end, max_commits + 1)
        more = len(commits) > max_commits
        commits = commits[:max_commits]
        if not commits:
            return ToolOutput(status="no_data",
                              summary=f"no commits to {_names(paths)} from {start:%Y-%m-%d} "
                                      f"to {end:%Y-%m-%d}")
        newest = commits[0]
        summary = (f"{len(commits)}{'+' if more else ''} commits to {_names(paths)} since "
                   f"{start:%Y-%m-%d}; newest {newest.sha[:SHORT]} {newest.date:%Y-%m-%d %H:%M} "
                   f"{newest.author}: {newest.summary}")
        return ToolOutput(
            status="ok", summary=summary,
            data={"commits": [_commit(c) for c in commits], "truncated": more,
                  "since": iso(start), "until": iso(end)},
            citations=[cite("code", f"{_cited_file(c, allowed)}@{c.sha[:SHORT]}", c.summary,
                            known_secrets) for c in commits[:MAX_CITED] if c.files])

    def git_show(sha: Sha, path: Annotated[str | None, Field(
                     description="Only this file's change.")] = None) -> ToolOutput:
        """One commit: author, date, message, files, and its patch (of one file if given)."""
        if path is not None and (refused := allowed.refuse([path])) is not None:
            return refused
        try:
            commit, patch = repo.show(sha, path)
        except ValueError as exc:
            return fail(f"git_show {sha}", str(exc))
        patch = _allowed_patch(patch, allowed)
        shown, cut = clip(patch, max_diff_chars)
        return ToolOutput(
            status="ok",
            summary=f"commit {commit.sha[:SHORT]} {commit.date:%Y-%m-%d %H:%M} {commit.author}: "
                    f"{commit.summary} ({len(commit.files)} files)"
                    + (" [diff cut]" if cut else ""),
            data={"commit": _commit(commit), "patch": shown, "truncated": cut},
            citations=_hunk_citations(patch, commit.sha, known_secrets))

    def git_diff(a: Sha, b: Sha, paths: Paths | None = None) -> ToolOutput:
        """The diff from commit a to commit b (e.g. the last good run's code to the bad
        run's), limited to the given paths."""
        if (refused := allowed.refuse(paths or [])) is not None:
            return refused
        try:
            patch = repo.diff(a, b, list(paths or allowed.paths))
        except ValueError as exc:
            return fail(f"git_diff {a}..{b}", str(exc))
        if not patch.strip():
            return ToolOutput(status="no_data",
                              summary=f"no difference in {_names(paths)} between "
                                      f"{a[:SHORT]} and {b[:SHORT]}")
        shown, cut = clip(patch, max_diff_chars)
        files = _FILE.findall(patch)
        return ToolOutput(
            status="ok",
            summary=f"diff {a[:SHORT]}..{b[:SHORT]}: {len(files)} files changed "
                    f"({', '.join(f[1] for f in files[:3])})" + (" [diff cut]" if cut else ""),
            data={"patch": shown, "truncated": cut, "files": [f[1] for f in files]},
            citations=_hunk_citations(patch, b, known_secrets))

    def git_blame(path: str, start: Annotated[int, Field(ge=1)],
                  end: Annotated[int, Field(ge=1)]) -> ToolOutput:
        """Who last changed lines start..end of a file, and in which commit (at HEAD)."""
        if (refused := allowed.refuse([path])) is not None:
            return refused
        end = min(max(end, start), start + max_file_lines - 1)
        try:
            lines = repo.blame(path, start, end)
        except (ValueError, FileNotFoundError) as exc:
            return fail(f"git_blame {path}", str(exc))
        except Exception as exc:  # git's own error text: a range past the end, a bad path
            return fail(f"git_blame {path}", str(exc).splitlines()[-1][:300])
        if not lines:
            return ToolOutput(status="no_data", summary=f"no lines {start}-{end} in {path}")
        newest = max(lines, key=lambda x: x.date)
        head = repo.head()[:SHORT]
        ref = f"{path}@{head}#L{lines[0].line_no}-L{lines[-1].line_no}"
        text = "\n".join(x.text for x in lines)
        return ToolOutput(
            status="ok",
            summary=f"blame {path} L{start}-L{lines[-1].line_no}: "
                    f"{len({x.sha for x in lines})} commits, newest {newest.sha[:SHORT]} "
                    f"{newest.date:%Y-%m-%d} by {newest.author}",
            data={"lines": [{"line": x.line_no, "sha": x.sha[:SHORT], "author": x.author,
                             "date": iso(x.date), "text": clip(x.text, 300)[0]} for x in lines]},
            citations=[cite("code", ref, text, known_secrets),
                       cite("code", f"{path}@{newest.sha[:SHORT]}", newest.text, known_secrets)])

    def read_file(path: str, sha: Annotated[str | None, Field(
                      pattern=r"^[0-9a-f]{7,40}$", description="Commit; default HEAD.")
                  ] = None, start: Annotated[int, Field(ge=1)] = 1,
                  end: Annotated[int | None, Field(ge=1)] = None) -> ToolOutput:
        """A file of the repository at a commit (default HEAD), lines start..end with their
        numbers (at most 300 lines)."""
        if (refused := allowed.refuse([path])) is not None:
            return refused
        rev = sha or repo.head()
        try:
            content = repo.read(path, rev)
        except (ValueError, FileNotFoundError) as exc:
            return fail(f"read_file {path}", str(exc))
        all_lines = content.splitlines()
        end = min(end or len(all_lines), start + max_file_lines - 1, len(all_lines))
        if start > max(end, 1) or not all_lines:
            return ToolOutput(status="no_data", summary=f"{path} has {len(all_lines)} lines")
        chosen = all_lines[start - 1:end]
        ref = f"{path}@{rev[:SHORT]}#L{start}-L{end}"
        numbered = "\n".join(f"{i:>4}  {line}" for i, line in enumerate(chosen, start))
        return ToolOutput(
            status="ok",
            summary=f"read {ref} ({len(chosen)} of {len(all_lines)} lines)",
            data={"path": path, "sha": rev[:SHORT], "start": start, "end": end,
                  "total_lines": len(all_lines), "text": numbered,
                  "truncated": end < len(all_lines) or start > 1},
            citations=[cite("code", ref, "\n".join(chosen), known_secrets)])

    tools = [git_log, git_show, git_diff, git_blame, read_file]
    return [make_tool(fn, known_secrets) for fn in tools]


class _Allowed:
    """The files (and folders, ending in `/`) the tools may look at."""

    def __init__(self, paths: Sequence[str]) -> None:
        self.paths = sorted({_norm(p) for p in paths if p})

    def allows(self, path: str) -> bool:
        p = _norm(path)
        return any(p == a or (a.endswith("/") and p.startswith(a)) for a in self.paths)

    def refuse(self, paths: Sequence[str]) -> ToolOutput | None:
        bad = [p for p in paths if ".." in p.split("/") or p.startswith("/") or not self.allows(p)]
        if not bad:
            return None
        files = [p for p in self.paths if not p.endswith("/")]
        return fail("path not in the system map",
                    f"only files the system map names may be read, not {', '.join(bad)}; "
                    f"system_map gives a node's code paths; some are "
                    f"{', '.join(files[:20])}")


def _norm(path: str) -> str:
    return path.strip().removeprefix("./")


def _names(paths: Sequence[str] | None) -> str:
    if not paths:
        return "the mapped code"
    return ", ".join(paths[:3]) + (f" and {len(paths) - 3} more" if len(paths) > 3 else "")


def _commit(c: Commit) -> dict[str, object]:
    return {"sha": c.sha[:SHORT], "date": iso(c.date), "author": c.author, "summary": c.summary,
            "files": c.files[:20]}


def _cited_file(commit: Commit, allowed: _Allowed) -> str:
    return next((f for f in commit.files if allowed.allows(f)), commit.files[0])


def _allowed_patch(patch: str, allowed: _Allowed) -> str:
    """Only the parts of a patch about files the tools may look at."""
    parts = re.split(r"(?=^diff --git )", patch, flags=re.MULTILINE)
    kept = [p for p in parts if not p.startswith("diff --git")
            or (m := _FILE.match(p)) is None or allowed.allows(m.group(2))]
    return "".join(kept)


def _hunk_citations(patch: str, sha: str, known: Iterable[str]) -> list:
    """The first changed hunk of each file, as `path@sha#Lstart-Lend` of the new side."""
    out = []
    for part in re.split(r"(?=^diff --git )", patch, flags=re.MULTILINE):
        name = _FILE.match(part)
        hunk = _HUNK.search(part)
        if name is None:
            continue
        ref = f"{name.group(2)}@{sha[:SHORT]}"
        if hunk is not None:
            first, count = int(hunk.group(1)), int(hunk.group(2) or 1)
            if count:
                ref += f"#L{first}-L{first + count - 1}"
        body = part[hunk.start():] if hunk is not None else part
        changed = "\n".join(x for x in body.splitlines() if x[:1] in "+-@" and x[:3] not in
                            ("+++", "---"))
        out.append(cite("code", ref, changed, known))
        if len(out) >= MAX_CITED:
            break
    return out


__all__ = ["code_tools"]
