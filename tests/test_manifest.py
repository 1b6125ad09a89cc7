from __future__ import annotations

import json

import jsonschema
import pytest
import yaml

from tests.conftest import REPO_ROOT, SHARED

SCHEMA = SHARED / "slack" / "manifest.schema.1.0.0.json"


@pytest.fixture(scope="module")
def manifest() -> dict:
    return yaml.safe_load((REPO_ROOT / "manifest.yaml").read_text())


@pytest.mark.skipif(not SCHEMA.exists(), reason="../shared/slack is not beside the repo")
def test_manifest_is_valid_against_slacks_schema(manifest: dict) -> None:
    jsonschema.validate(manifest, json.loads(SCHEMA.read_text()))


def test_manifest_has_the_command_and_events_sleuth_handles(manifest: dict) -> None:
    commands = [c["command"] for c in manifest["features"]["slash_commands"]]
    assert commands == ["/investigate"]
    events = set(manifest["settings"]["event_subscriptions"]["bot_events"])
    assert {"app_mention", "reaction_added"} <= events
    assert manifest["settings"]["interactivity"]["is_enabled"] is True
    assert "commands" in manifest["oauth_config"]["scopes"]["bot"]
