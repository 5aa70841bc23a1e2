"""The rules file: defaults, the cadence section, and errors a person can act on."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from handoff.cadence import Kind
from settings import DEFAULT_RULES_FILE, TOUCH_KINDS, ConfigError, Rules, Settings


def _rules(tmp_path: Path, text: str) -> Rules:
    path = tmp_path / "baton.yml"
    path.write_text(text, encoding="utf-8")
    return Rules.load(path)


def test_the_shipped_rules_file_loads_and_matches_the_defaults() -> None:
    shipped = Rules.load(DEFAULT_RULES_FILE)
    assert shipped.cadence == Rules.load(None).cadence
    assert shipped.schedule.cadence == {"hour": 8, "minute": 30}


def test_touch_kinds_in_settings_and_in_the_cadence_agree() -> None:
    assert {k.value for k in Kind} == set(TOUCH_KINDS)


def test_cadence_plans_and_rhythm_can_be_changed(tmp_path: Path) -> None:
    rules = _rules(
        tmp_path,
        "cadence:\n  plans:\n    mid: [check_in: 30, kickoff: 10]\n"
        "  renewal_days: [120, 30]\n  qbr_tiers: []\n",
    )
    assert rules.cadence.plans["mid"] == (("kickoff", 10), ("check_in", 30))  # sorted by day
    assert rules.cadence.plans["high"][0] == ("kickoff", 7)  # tiers not mentioned keep theirs
    assert rules.cadence.renewal_days == (120, 30) and rules.cadence.qbr_tiers == ()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("cadence:\n  plans:\n    gold: [kickoff: 7]\n", "plans.gold: unknown tier"),
        ("cadence:\n  plans:\n    high: [lunch: 7]\n", "unknown touch 'lunch'"),
        ("cadence:\n  plans:\n    high: [kickoff]\n", "write it as `kind: day`"),
        ("cadence:\n  plans:\n    high: [kickoff: soon]\n", "needs a whole number of days"),
        ("cadence:\n  plans:\n    high: [kickoff: 120]\n", "due within onboarding_days"),
        ("cadence:\n  renewal_days: [0]\n", "renewal_days"),
        ("cadence:\n  qbr_tiers: [gold]\n", "qbr_tiers: unknown tier"),
        ("cadence:\n  remind_before: 1\n", "unknown setting(s) remind_before"),
        ("cadence:\n  overdue_after_days: -1\n", "must not be negative"),
    ],
)
def test_cadence_mistakes_are_reported_with_where_and_what(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        _rules(tmp_path, text)
    assert message in str(err.value) and "cadence" in str(err.value)


def test_secrets_stay_out_of_the_settings_repr() -> None:
    s = Settings.from_env({"SLACK_BOT_TOKEN": "xoxb-secret", "BATON_INGEST_TOKEN": "ingest-secret"})
    assert "secret" not in repr(s)


def test_an_empty_variable_means_unset(tmp_path: Path) -> None:
    """`docker run --env-file .env` with .env.example's `DATABASE_URL=` keeps the database in the volume."""
    s = Settings.from_env(
        {
            "DATABASE_URL": "",
            "BATON_DATA_DIR": str(tmp_path),
            "PORT": " ",
            "BATON_LOCALE": "",
            "BATON_CONFIG": "",
        }
    )
    assert s.database_url == f"sqlite:///{tmp_path / 'baton.db'}"
    assert (s.port, s.locale) == (3000, "en")


def test_the_image_keeps_its_database_in_the_volume_even_with_an_empty_database_url() -> None:
    dockerfile = (Path(__file__).resolve().parents[1] / "Dockerfile").read_text()
    env = dict(re.findall(r"(\w+)=(\S+)", re.search(r"^ENV (.*?[^\\])$", dockerfile, re.M | re.S).group(1)))
    assert env.get("BATON_DATA_DIR") == "/data" and "DATABASE_URL" not in env
    assert Settings.from_env({**env, "DATABASE_URL": ""}).database_url == "sqlite:////data/baton.db"


def test_a_named_rules_file_that_is_missing_is_an_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=f"BATON_CONFIG={tmp_path / 'nope.yml'}: no such file"):
        Settings.from_env({"BATON_CONFIG": str(tmp_path / "nope.yml")})
    with pytest.raises(ConfigError, match="no such file"):
        Settings.from_env({"BATON_CONFIG": str(tmp_path)})  # a directory is no rules file either


@pytest.mark.parametrize(
    ("given", "used"),
    [
        ("postgres://u:p@db:5432/baton", "postgresql+psycopg://u:p@db:5432/baton"),
        ("postgresql://u:p@db/baton", "postgresql+psycopg://u:p@db/baton"),
        ("postgresql+psycopg://u@db/baton", "postgresql+psycopg://u@db/baton"),
        ("sqlite:///x.db", "sqlite:///x.db"),
    ],
)
def test_database_urls_as_hosting_providers_write_them(given: str, used: str) -> None:
    assert Settings.from_env({"DATABASE_URL": given}).database_url == used


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("baton.db", "not a database URL"),
        ("mysql://u@db/baton", "SQLite or PostgreSQL, not mysql"),
        ("postgresql+psycopg2://u@db/baton", "write postgresql\\+psycopg://"),
    ],
)
def test_a_wrong_database_url_is_one_clear_error(given: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Settings.from_env({"DATABASE_URL": given})


def test_the_database_password_is_masked_in_the_repr_and_the_url_still_works() -> None:
    url = "postgresql+psycopg://baton:hunter2-pw@db.internal:5432/baton"
    s = Settings.from_env({"DATABASE_URL": url})
    assert "hunter2-pw" not in repr(s) and "hunter2-pw" not in str(s)
    assert "postgresql+psycopg://baton:***@db.internal:5432/baton" in repr(s)
    assert s.database_url == url  # what the engine is given is the real URL


def test_a_database_url_that_does_not_parse_is_hidden_whole() -> None:
    s = Settings(database_url="not a url:hunter2-pw")  # from_env refuses it; a Settings built in code may not
    assert "hunter2-pw" not in repr(s) and "database_url='***'" in repr(s)
