"""The command line as a user meets it: a real process, its exit code, stdout and stderr."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml


def sleuth(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bot", *args], capture_output=True, text=True,
                          env=env, timeout=120)


def test_help_lists_every_command_group_with_one_line() -> None:
    out = sleuth("--help").stdout
    for command in ("config", "demo", "run", "signals", "issues", "investigate", "case",
                    "evals", "workspace"):
        assert f" {command} " in out, command
    demo_help = sleuth("demo", "--help").stdout
    assert "scenarios" in demo_help and "run" in demo_help


def test_config_check_passes_on_embedded_defaults() -> None:
    result = sleuth("config", "check")
    assert result.returncode == 0, result.stderr
    assert "configuration is valid" in result.stdout


def test_config_check_lists_problems_and_exits_non_zero(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("demo:\n  days: many\nsources:\n  dbt: {project_dir: /no/such/project}\n")
    result = sleuth("--config", str(bad), "config", "check")
    assert result.returncode == 1
    assert f"{bad}:2: demo.days: found 'many'" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_config_file_is_one_clean_line(tmp_path: Path) -> None:
    result = sleuth("--config", str(tmp_path / "nope.yaml"), "config", "show")
    assert result.returncode == 2
    assert result.stderr.startswith("error: invalid configuration")
    assert "Traceback" not in result.stderr


def test_config_show_prints_effective_yaml_with_secrets_masked(tmp_path: Path) -> None:
    env = {"ANTHROPIC_API_KEY": "sk-ant-supersecret", "PATH": "/usr/bin:/bin",
           "SLEUTH_HOME": str(tmp_path / "h")}
    result = sleuth("config", "show", env=env)
    assert result.returncode == 0, result.stderr
    shown = yaml.safe_load(result.stdout)
    assert shown["secrets"]["ANTHROPIC_API_KEY"] == "set (masked)"
    assert shown["sources"]["dbt"]["project_dir"] == str(tmp_path / "h/demo/platform/repo")
    assert "supersecret" not in result.stdout


def test_demo_scenarios_json_carries_ground_truth() -> None:
    result = sleuth("demo", "scenarios", "--json")
    assert result.returncode == 0, result.stderr
    scenarios = {s["name"]: s for s in json.loads(result.stdout)}
    assert len(scenarios) >= 10
    assert scenarios["flaky_network"]["truth"]["expected_issues"] == 0
    assert scenarios["two_incidents"]["truth"]["expected_issues"] == 2
    assert len(scenarios["cascade"]["truth"]["root_causes"]) == 1
    for s in scenarios.values():
        assert s["truth"]["severity"] in {"SEV1", "SEV2", "SEV3", "SEV4"}


def test_unknown_scenario_is_a_clear_error_and_writes_nothing(isolated_home: Path) -> None:
    result = sleuth("demo", "run", "--scenario", "meteor_strike")
    assert result.returncode == 2
    assert "unknown scenario 'meteor_strike'; choose one of:" in result.stderr
    assert not (isolated_home / "demo").exists()


def test_run_once_before_any_platform_says_what_is_missing_and_opens_nothing() -> None:
    result = sleuth("run", "--once")
    assert result.returncode == 0, result.stderr
    assert "run `sleuth demo run` first" in " ".join(result.stderr.split())
    assert "Traceback" not in result.stderr
    issues = sleuth("issues", "--json")
    assert issues.returncode == 0 and json.loads(issues.stdout) == []
    assert json.loads(sleuth("signals", "--filtered", "--json").stdout) == []


def test_case_verify_of_an_unknown_investigation_is_one_clean_line() -> None:
    result = sleuth("case", "verify", "99")
    assert result.returncode == 2
    assert "no case file for investigation 99" in result.stderr and "Traceback" not in result.stderr
