"""The platform's git history: real commits, several authors, ending in the shipped project."""

from __future__ import annotations

import subprocess
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from git import Repo

from bot.demo import gitrepo
from bot.demo.paths import shipped_project

FIRST_RUN = date(2026, 11, 1)


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("history") / "repo"
    gitrepo.build_history(path, first_run=FIRST_RUN)
    return path


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
    ).stdout


def test_history_has_many_commits_by_several_people(repo: Path) -> None:
    commits = list(Repo(repo).iter_commits("main"))
    assert len(commits) >= 15
    authors = {(c.author.name, c.author.email) for c in commits}
    assert len(authors) >= 4
    assert all(email.endswith("@example.com") for _, email in authors)
    assert all(c.author.email == c.committer.email for c in commits)
    messages = [c.message.splitlines()[0] for c in commits]
    assert len(set(messages)) == len(messages)
    assert messages[-1] == "Initial dbt project for the warehouse"


def test_dates_spread_over_weeks_before_the_first_run(repo: Path) -> None:
    commits = list(reversed(list(Repo(repo).iter_commits("main"))))
    dates = [c.authored_datetime for c in commits]
    first_run = datetime.combine(FIRST_RUN, datetime.min.time(), UTC)
    assert dates == sorted(dates)
    assert all(d < first_run for d in dates)
    assert dates[-1] - dates[0] >= timedelta(days=45)
    assert first_run - dates[0] <= timedelta(days=61)
    assert all(d.weekday() < 5 and 9 <= d.hour < 19 for d in dates)  # working hours, local time
    assert len({d.utcoffset() for d in dates}) >= 3  # people commit from their own time zones


def test_final_tree_is_the_shipped_project(repo: Path) -> None:
    tracked = set(git(repo, "ls-files").split())
    shipped = gitrepo.project_files(shipped_project())
    assert tracked == set(shipped)
    for path, content in shipped.items():
        assert (repo / path).read_bytes() == content, path
        assert git(repo, "show", f"HEAD:{path}").encode() == content, path
    assert git(repo, "status", "--porcelain") == ""
    assert (repo / ".gitignore").read_text().split() == ["target/", "logs/", "dbt_packages/"]


def test_history_is_built_in_stages_with_follow_up_changes(repo: Path) -> None:
    first = git(
        repo,
        "show",
        "--name-only",
        "--format=",
        git(repo, "rev-list", "--max-parents=0", "HEAD").strip(),
    )
    assert "dbt_project.yml" in first.split() and not any(
        p.startswith("models/") for p in first.split()
    )
    subjects = git(repo, "log", "--reverse", "--format=%s").splitlines()
    stage = {
        name: next(i for i, s in enumerate(subjects) if name in s)
        for name in ("staging", "intermediate", "marts", "tests", "exposure", "loader", "DAG")
    }
    assert list(stage.values()) == sorted(stage.values())
    # files that land early and reach their final version in a later commit
    changed_again = [
        p
        for p in git(repo, "ls-files").split()
        if len(git(repo, "log", "--format=%H", "--", p).split()) > 1
    ]
    assert len(changed_again) >= 3
    fix = git(
        repo,
        "log",
        "-S",
        "where payment_status = 'succeeded'",
        "--format=%s",
        "--",
        "models/intermediate",
    )
    assert fix.strip() == "Count only the successful charge per order"


def test_same_inputs_give_the_same_shas(repo: Path, tmp_path: Path) -> None:
    again = gitrepo.build_history(tmp_path / "again", first_run=FIRST_RUN)
    assert again == Repo(repo).head.commit.hexsha
    other = gitrepo.build_history(tmp_path / "later", first_run=FIRST_RUN + timedelta(days=1))
    assert other != again


def test_build_refuses_a_folder_with_files(tmp_path: Path) -> None:
    (tmp_path / "x").write_text("keep me")
    with pytest.raises(FileExistsError):
        gitrepo.build_history(tmp_path, first_run=FIRST_RUN)


def test_commit_change_commits_edits_as_the_author(tmp_path: Path) -> None:
    edits = pytest.importorskip("bot.demo.edits")
    path = tmp_path / "repo"
    head = gitrepo.build_history(path, first_run=FIRST_RUN)
    edit = edits.FileEdit(
        path="dags/daily_warehouse.yml",
        old="    retries: 2\n",
        new="    retries: 0\n",
        message="daily_warehouse: fail fast",
    )
    when = datetime(2026, 11, 20, 15, 42, tzinfo=UTC)
    sha = gitrepo.commit_change(
        path,
        [edit],
        author=("Jordan Blake", "jordan.blake@example.com"),
        message=edit.message,
        when=when,
    )
    commit = Repo(path).commit(sha)
    assert commit.parents[0].hexsha == head and Repo(path).head.commit.hexsha == sha
    assert commit.author.name == "Jordan Blake" and commit.authored_datetime == when
    assert commit.message == "daily_warehouse: fail fast\n"
    assert list(commit.stats.files) == ["dags/daily_warehouse.yml"]
    assert "    retries: 0\n" in git(path, "show", f"{sha}:dags/daily_warehouse.yml")
    assert git(path, "status", "--porcelain") == ""
    with pytest.raises(ValueError, match="timezone-aware"):
        gitrepo.commit_change(
            path,
            [edit.reverted()],
            author=gitrepo.TEAM["maya"],
            message="x",
            when=datetime(2026, 11, 21),
        )
