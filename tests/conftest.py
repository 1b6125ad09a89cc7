"""Every test runs with its state in tmp_path: no user config, no user data directory."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = REPO_ROOT.parent / "shared"


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("SLEUTH_HOME", str(home))
    monkeypatch.delenv("SLEUTH_CONFIG", raising=False)
    monkeypatch.setenv("DBT_SEND_ANONYMOUS_USAGE_STATS", "False")
    monkeypatch.chdir(tmp_path)  # no ./sleuth.yaml from the developer's folder
    return home
