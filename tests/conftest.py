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


# One demo platform per test session: its healthy history is built once (real generator,
# loaders, dbt and git) and every scenario after the first restores it from the cache.
DEMO_DAYS = 3
DEMO_SEED = 11


@pytest.fixture(scope="session")
def demo_platform(tmp_path_factory: pytest.TempPathFactory):  # -> (PlatformPaths, cache dir)
    from bot.demo.paths import PlatformPaths  # imported late: the fast tests skip dbt's import

    home = tmp_path_factory.mktemp("home")  # laid out as a Sleuth home: Settings(home=…) finds it
    return PlatformPaths(home / "demo" / "platform"), home / "demo" / "cache"
