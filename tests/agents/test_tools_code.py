"""Code tools over a tiny git repository made here with GitPython."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import git
import pytest

from agents.report import REFERENCE_FORMATS, Citation
from agents.tools.base import Tool
from agents.tools.code import code_tools
from bot.world.code import GitRepo

MODEL = "models/int_orders.sql"
ORIGINAL = "\n".join(["with payments as (", "    select * from payments",
                      "    where status = 'succeeded'", ")", "select * from orders",
                      "join payments using (order_id)"]) + "\n"
SECRET_KEY = "AKIAIOSFODNN7EXAMPLE"


def commit(repo: git.Repo, files: dict[str, str], message: str, when: str, author: str) -> str:
    for path, text in files.items():
        full = Path(repo.working_tree_dir) / path
        full.parent.mkdir(parents=True, exist_ok=True)
        full.write_text(text)
        repo.index.add([path])
    actor = git.Actor(author, f"{author.split()[0].lower()}@example.com")
    return repo.index.commit(message, author=actor, committer=actor, author_date=when,
                             commit_date=when).hexsha


@pytest.fixture
def shas(tmp_path: Path) -> dict[str, str]:
    repo = git.Repo.init(tmp_path / "repo")
    return {
        "first": commit(repo, {MODEL: ORIGINAL, "dags/daily.yml": "tasks: {}\n",
                               "secrets/prod.env": "x=1\n"}, "Add orders model",
                        "2026-11-01T10:00:00+0000", "Maya Chen"),
        "config": commit(repo, {"dags/daily.yml": f"tasks: {{}}\n# key {SECRET_KEY}\n"},
                         "Tune retries", "2026-11-10T10:00:00+0000", "Tom Nowak"),
        "fanout": commit(repo, {MODEL: ORIGINAL.replace("    where status = 'succeeded'\n", ""),
                                "secrets/prod.env": "x=2\n"},
                         "Simplify payments CTE", "2026-11-23T15:42:00+0000", "Jordan Blake"),
    }


def tools(tmp_path: Path, **kwargs) -> dict[str, Tool]:
    found = code_tools(GitRepo(tmp_path / "repo"), [MODEL, "dags/"], **kwargs)
    return {t.name: t for t in found}


def code_refs_ok(out) -> bool:
    return bool(out.citations) and all(
        c.kind == "code" and re.fullmatch(REFERENCE_FORMATS["code"][0], c.reference)
        for c in out.citations)


def test_git_log_lists_the_commits_to_mapped_paths_in_a_window(tmp_path, shas) -> None:
    log = tools(tmp_path)["git_log"]
    out = log.call({"paths": [MODEL], "since": "2026-11-15T00:00:00Z",
                    "until": "2026-11-24T00:00:00Z"})
    assert [c["summary"] for c in out.data["commits"]] == ["Simplify payments CTE"]
    assert out.citations[0].reference == f"{MODEL}@{shas['fanout'][:12]}" and code_refs_ok(out)
    every = log.call({"since": "2026-10-01T00:00:00Z", "until": "2026-11-24T00:00:00Z"})
    assert len(every.data["commits"]) == 3
    old = log.call({"paths": [MODEL], "until": "2026-10-01T00:00:00Z"})
    assert old.status == "no_data"


def test_git_show_gives_the_patch_and_cites_the_changed_lines(tmp_path, shas) -> None:
    out = tools(tmp_path)["git_show"].call({"sha": shas["fanout"]})
    assert "-    where status = 'succeeded'" in out.data["patch"]
    assert "secrets/prod.env" not in out.data["patch"]  # not in the map: left out
    assert out.citations[0].reference == f"{MODEL}@{shas['fanout'][:12]}#L1-L5"
    assert code_refs_ok(out) and "Jordan Blake" in out.summary


def test_git_diff_between_two_commits_is_cut_when_long(tmp_path, shas) -> None:
    out = tools(tmp_path)["git_diff"].call({"a": shas["first"][:7], "b": shas["fanout"][:10]})
    assert out.data["files"] == ["dags/daily.yml", MODEL] and code_refs_ok(out)
    assert not out.data["truncated"]
    one = tools(tmp_path)["git_diff"].call({"a": shas["first"], "b": shas["fanout"],
                                            "paths": [MODEL]})
    assert one.data["files"] == [MODEL]
    cut = tools(tmp_path, max_diff_chars=200)["git_diff"].call(
        {"a": shas["first"], "b": shas["fanout"]})
    assert cut.data["truncated"] and SECRET_KEY not in cut.data["patch"]
    assert cut.summary.endswith("[diff cut]") and cut.data["patch"].endswith("…[cut]")


def test_blame_and_read_file_cite_path_at_sha_with_lines(tmp_path, shas) -> None:
    t = tools(tmp_path)
    blame = t["git_blame"].call({"path": MODEL, "start": 1, "end": 3})
    assert [x["sha"] for x in blame.data["lines"]] == [shas["first"][:12]] * 3
    assert blame.citations[0].reference == f"{MODEL}@{shas['fanout'][:12]}#L1-L3"
    read = t["read_file"].call({"path": MODEL, "sha": shas["first"], "start": 2, "end": 3})
    assert read.data["text"].splitlines()[1].endswith("where status = 'succeeded'")
    assert read.citations[0].reference == f"{MODEL}@{shas['first'][:12]}#L2-L3"
    Citation.model_validate(read.citations[0].model_dump())


def test_paths_outside_the_map_and_unknown_commits_are_refused(tmp_path, shas) -> None:
    t = tools(tmp_path)
    for call in (("read_file", {"path": "secrets/prod.env"}),
                 ("read_file", {"path": "models/../secrets/prod.env"}),
                 ("git_log", {"paths": ["secrets/"]}),
                 ("git_blame", {"path": "/etc/passwd", "start": 1, "end": 2})):
        out = t[call[0]].call(call[1])
        assert out.status == "error" and out.summary == "path not in the system map", call
    assert t["git_show"].call({"sha": "0123456789abcdef"}).status == "error"
    assert t["git_show"].call({"sha": "--output=/tmp/x"}).status == "error"  # not a sha


def test_a_key_in_a_committed_file_is_redacted(tmp_path, shas) -> None:
    out = tools(tmp_path)["read_file"].call({"path": "dags/daily.yml"})
    text = out.for_model()
    assert SECRET_KEY not in text and "[REDACTED:aws_access_key]" in text


def test_git_log_dates_are_utc(tmp_path, shas) -> None:
    commits = GitRepo(tmp_path / "repo").log([MODEL], None, None, 5)
    assert commits[0].date == datetime(2026, 11, 23, 15, 42, tzinfo=UTC)
