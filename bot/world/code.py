"""The pipeline's git repository, read with GitPython: log, show, diff, blame, read.

Paths are relative to the repository's root. Only commits reachable from HEAD are read, and
every answer is bounded by the caller (`limit`) or by the tools (diff size).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import git

from agents.world import BlameLine, Commit
from bot.errors import SleuthError


class GitRepo:
    """The `CodeRepo` of a local checkout."""

    def __init__(self, path: Path) -> None:
        try:
            self.repo = git.Repo(path)
        except (git.InvalidGitRepositoryError, git.NoSuchPathError) as exc:
            raise SleuthError(f"sources.git.repo: {path} is not a git checkout") from exc
        self.path = Path(path)

    def head(self) -> str:
        return self.repo.head.commit.hexsha

    def log(self, paths: list[str], since: datetime | None, until: datetime | None,
            limit: int) -> list[Commit]:
        options: dict[str, object] = {"max_count": limit}
        if since is not None:
            options["since"] = since.isoformat()
        if until is not None:
            options["until"] = until.isoformat()
        commits = self.repo.iter_commits("HEAD", paths=paths or None, **options)
        return [_commit(c) for c in commits]

    def show(self, sha: str, path: str | None = None) -> tuple[Commit, str]:
        commit = self._commit(sha)
        parent = commit.parents[0] if commit.parents else git.NULL_TREE
        patch = self.repo.git.diff(parent if parent is git.NULL_TREE else parent.hexsha,
                                   commit.hexsha, "--", *([path] if path else []))
        if parent is git.NULL_TREE:  # a root commit: everything it adds
            patch = self.repo.git.show(commit.hexsha, "--format=", "--", *([path] if path else []))
        return _commit(commit), patch

    def diff(self, sha_a: str, sha_b: str, paths: list[str]) -> str:
        a, b = self._commit(sha_a), self._commit(sha_b)
        return self.repo.git.diff(a.hexsha, b.hexsha, "--", *paths)

    def blame(self, path: str, start: int, end: int, sha: str | None = None) -> list[BlameLine]:
        rev = self._commit(sha).hexsha if sha else "HEAD"
        lines: list[BlameLine] = []
        number = start
        for commit, chunk in self.repo.blame(rev, path, L=f"{start},{end}") or []:
            assert isinstance(commit, git.Commit)
            for text in chunk:
                line = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
                lines.append(BlameLine(line_no=number, sha=commit.hexsha,
                                       author=str(commit.author.name),
                                       date=commit.committed_datetime.astimezone(UTC),
                                       text=line))
                number += 1
        return lines

    def read(self, path: str, sha: str | None = None) -> str:
        commit = self._commit(sha) if sha else self.repo.head.commit
        try:
            blob = commit.tree / path
        except KeyError:
            raise FileNotFoundError(f"{path} does not exist at {commit.hexsha[:10]}") from None
        return blob.data_stream.read().decode("utf-8", "replace")

    def _commit(self, sha: str | None) -> git.Commit:
        try:
            found = self.repo.commit(sha or "HEAD")
        except (git.BadName, ValueError, git.GitCommandError):
            raise ValueError(f"no commit {sha!r} in the repository") from None
        if not self.repo.is_ancestor(found, self.repo.head.commit):
            raise ValueError(f"commit {sha!r} is not in HEAD's history")
        return found


def _commit(c: git.Commit) -> Commit:
    return Commit(sha=c.hexsha, author=str(c.author.name),
                  date=c.committed_datetime.astimezone(UTC),
                  summary=str(c.summary), files=sorted(str(f) for f in c.stats.files))
