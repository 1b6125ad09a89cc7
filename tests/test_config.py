from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import ConfigError, Secrets, check_settings, load_settings, masked


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sleuth.yaml"
    path.write_text(text)
    return path


def test_no_file_runs_embedded_defaults_against_the_demo_platform(isolated_home: Path) -> None:
    settings = load_settings(None).with_defaults()
    assert settings.home == isolated_home
    assert settings.store.url == f"sqlite:///{isolated_home / 'sleuth.db'}"
    assert settings.sources.dbt.project_dir == isolated_home / "demo/platform/repo"
    assert settings.sources.warehouse.url.endswith("demo/platform/warehouse.duckdb")
    assert settings.sources.logs[0].format == "airflow"


def test_user_sources_replace_the_demo_and_relative_paths_follow_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, """
sources:
  dbt: {project_dir: analytics, profiles_dir: ~/.dbt, target: ci}
  warehouse: {url: "snowflake://svc@acme/analytics"}
  git: {repo: ../code}
  metrics: {kind: prometheus, url: "http://prom:9090"}
  logs:
    - {name: app, paths: ["/var/log/app/*.log"], format: text,
       header_pattern: '^(?P<ts>\\S+) (?P<level>\\w+) (?P<content>.*)$'}
""")
    settings = load_settings(path).with_defaults()
    assert settings.sources.dbt.project_dir == tmp_path / "analytics"
    assert settings.sources.dbt.profiles_dir == Path.home() / ".dbt"
    assert settings.sources.dbt.artifacts_dir == tmp_path / "analytics" / "target"
    assert settings.sources.git.repo == (tmp_path / "../code").resolve()
    assert settings.sources.metrics.kind == "prometheus"
    assert settings.sources.logs[0].name == "app"


def test_every_problem_is_reported_with_file_key_line_found_and_expected(tmp_path: Path) -> None:
    path = write(tmp_path, """demo:
  days: 0
  sede: 3
sources:
  metrics: {kind: prometheus}
  logs:
    - {name: x, paths: [a.log], format: text, header_pattern: '(?P<msg>.*)'}
""")
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    by_key = {p.key: p for p in caught.value.problems}
    assert set(by_key) == {"demo.days", "demo.sede", "sources.metrics.url",
                           "sources.logs.0.header_pattern"}
    assert by_key["demo.days"].line == 2 and by_key["demo.days"].found == "0"
    assert "greater than or equal to 1" in by_key["demo.days"].expected
    assert by_key["demo.sede"].found == "unknown key 'sede'"
    assert by_key["sources.metrics.url"].found == "nothing"
    assert "content" in by_key["sources.logs.0.header_pattern"].expected
    assert all(p.file == str(path) for p in caught.value.problems)


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "demo:\n  days: [1,\n  seed: 2\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    (problem,) = caught.value.problems
    assert problem.found.startswith("invalid YAML") and problem.line is not None


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="a mapping of keys"):
        load_settings(write(tmp_path, "- just\n- a list\n"))


def test_literal_password_in_a_url_is_refused_but_env_reference_is_used(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="password written in the URL"):
        load_settings(write(tmp_path, "store: {url: 'postgresql://bob:hunter2@db/sleuth'}\n"))
    monkeypatch.setenv("PGPASSWORD", "s3cret-value")
    settings = load_settings(write(tmp_path, "store: {url: 'postgresql://bob:${PGPASSWORD}@db/s'}\n"))
    assert settings.store.url == "postgresql://bob:s3cret-value@db/s"
    shown = str(masked(settings, Secrets.from_env()))
    assert "s3cret-value" not in shown and "bob:***@db" in shown


def test_unset_environment_reference_is_a_problem(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"\$\{NOT_SET_ANYWHERE\} \(not set\)"):
        load_settings(write(tmp_path, "sources: {git: {repo: '${NOT_SET_ANYWHERE}'}}\n"))


def test_secrets_come_from_the_environment_and_are_masked() -> None:
    secrets = Secrets.from_env({"ANTHROPIC_API_KEY": "sk-ant-abc123", "SLACK_BOT_TOKEN": ""})
    shown = masked(load_settings(None), secrets)["secrets"]
    assert shown["ANTHROPIC_API_KEY"] == "set (masked)"
    assert shown["SLACK_BOT_TOKEN"] == "not set"
    assert "sk-ant-abc123" not in str(shown)


def test_check_reports_missing_user_sources_not_unbuilt_demo_defaults(tmp_path: Path) -> None:
    assert check_settings(load_settings(None), "(embedded defaults)") == []
    path = write(tmp_path, "sources: {dbt: {project_dir: nowhere}, git: {repo: nowhere}}\n")
    keys = [p.key for p in check_settings(load_settings(path), str(path))]
    assert keys == ["sources.dbt.project_dir", "sources.git.repo"]


def test_sleuth_home_environment_overrides_the_file(tmp_path: Path, isolated_home: Path) -> None:
    settings = load_settings(write(tmp_path, "home: /somewhere/else\n"))
    assert settings.home == isolated_home


def test_the_readme_example_config_is_valid(tmp_path: Path, monkeypatch) -> None:
    """The README documents every section by example: that example must load as written."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    start = readme.index("```yaml\nhome:") + len("```yaml\n")
    example = tmp_path / "sleuth.yaml"
    example.write_text(readme[start:readme.index("```", start)])
    monkeypatch.setenv("PGPASSWORD", "from-the-environment")
    settings = load_settings(example)
    assert settings.sources.tables.monitors[0].max_age is not None
    assert settings.intake.noise.maintenance[0].name == "sunday-vacuum"
    assert settings.slack.approvers == ["U024BE7LH"] and settings.slack.auto_investigate == "SEV2"


def test_slack_settings_are_checked_where_they_are_written(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, "slack: {auto_investigate: null, "
                                             "update_interval: 2s}\n"))
    assert settings.slack.auto_investigate is None
    assert settings.slack.update_interval.total_seconds() == 2
    with pytest.raises(ConfigError) as raised:
        load_settings(write(tmp_path, "slack:\n  mode: websocket\n  path: slack/events\n"))
    keys = [p.key for p in raised.value.problems]
    assert keys == ["slack.mode", "slack.path"]
