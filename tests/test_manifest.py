"""manifest.yml is valid against Slack's published schema and matches what the code listens for."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT.parent / "shared" / "slack-manifest-schema" / "manifest.schema.1.0.0.json"


@pytest.fixture(scope="module")
def manifest() -> dict:
    return yaml.safe_load((ROOT / "manifest.yml").read_text(encoding="utf-8"))


def test_manifest_is_valid_against_slacks_schema(manifest: dict) -> None:
    if not SCHEMA.exists():
        pytest.fail(f"Slack's manifest schema is expected at {SCHEMA}")
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    validator = jsonschema.Draft7Validator(schema)
    errors = sorted(validator.iter_errors(manifest), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)


def test_a_broken_manifest_is_caught(manifest: dict) -> None:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    broken = {**manifest, "display_information": {}}
    assert list(jsonschema.Draft7Validator(schema).iter_errors(broken))


def test_manifest_declares_what_baton_uses(manifest: dict) -> None:
    assert [c["command"] for c in manifest["features"]["slash_commands"]] == ["/handoff"]
    assert manifest["features"]["app_home"]["home_tab_enabled"] is True
    assert "app_home_opened" in manifest["settings"]["event_subscriptions"]["bot_events"]
    assert manifest["settings"]["interactivity"]["is_enabled"] is True
    scopes = set(manifest["oauth_config"]["scopes"]["bot"])
    assert {"commands", "chat:write", "users:read", "usergroups:read"} <= scopes


# The scopes each Web API method needs, from Slack's method pages. A method Baton calls that is not here
# fails the test below: look its scope up and add it, here and in manifest.yml.
METHOD_SCOPES: dict[str, set[str]] = {
    "auth.test": set(),
    "chat.getPermalink": set(),
    "chat.postMessage": {"chat:write"},
    "chat.postEphemeral": {"chat:write"},
    "chat.update": {"chat:write"},
    "chat.delete": {"chat:write"},
    "conversations.open": {"im:write"},
    "conversations.history": {"channels:history", "groups:history", "im:history"},
    "conversations.replies": {"channels:history", "groups:history", "im:history"},
    "users.info": {"users:read"},
    "users.lookupByEmail": {"users:read.email"},
    "usergroups.users.list": {"usergroups:read"},
    "files.upload.v2": {"files:write"},  # files.getUploadURLExternal + files.completeUploadExternal
    "views.open": set(),
    "views.update": set(),
    "views.publish": set(),
    "views.push": set(),
}
FAMILIES = (
    "auth|chat|conversations|files|users|usergroups|views|reactions|team|pins|bookmarks|reminders|apps|dnd"
)
CALL = re.compile(rf"client\.({FAMILIES})_([A-Za-z0-9_]+)\b")  # called or passed to a retry helper
SOURCES = ("app.py", "bot", "handoff", "alerts", "digest", "jobs", "api", "storage")


def called_methods() -> dict[str, str]:
    """Every Slack Web API method the code calls through slack_sdk's WebClient, with one place it is."""
    found: dict[str, str] = {}
    for top in SOURCES:
        paths = [ROOT / top] if top.endswith(".py") else sorted((ROOT / top).rglob("*.py"))
        for path in paths:
            for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                for family, rest in CALL.findall(line):
                    method = f"{family}.{rest.replace('_', '.')}"  # usergroups_users_list -> ...users.list
                    found.setdefault(method, f"{path.relative_to(ROOT)}:{n}")
    return found


def missing_scopes(manifest: dict) -> dict[str, list[str]]:
    """Each method the code calls whose scope the manifest does not ask for, with where it is called."""
    calls = called_methods()
    unknown = {m: where for m, where in calls.items() if m not in METHOD_SCOPES}
    assert not unknown, f"add these methods' scopes to METHOD_SCOPES (Slack's method pages): {unknown}"
    granted = set(manifest["oauth_config"]["scopes"]["bot"])
    return {
        f"{m} ({calls[m]})": sorted(METHOD_SCOPES[m] - granted) for m in calls if METHOD_SCOPES[m] - granted
    }


def test_every_method_the_code_calls_has_its_scope_in_the_manifest(manifest: dict) -> None:
    calls = called_methods()
    assert "chat.postMessage" in calls and "files.upload.v2" in calls  # the scan sees the code
    missing = missing_scopes(manifest)
    assert not missing, f"manifest.yml lacks scopes a real workspace will refuse without: {missing}"


def test_a_missing_scope_is_caught(manifest: dict) -> None:
    bot = [
        x for x in manifest["oauth_config"]["scopes"]["bot"] if x not in ("files:write", "users:read.email")
    ]
    broken = {**manifest, "oauth_config": {"scopes": {"bot": bot}}}
    missing = {k.split(" ")[0]: v for k, v in missing_scopes(broken).items()}
    assert missing == {"files.upload.v2": ["files:write"], "users.lookupByEmail": ["users:read.email"]}
