"""The command line as a person meets it: every failure is one line saying what to fix, never a traceback."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

import app
from bot.server import create_wsgi
from tests.fakeslack import FakeSlack
from tests.servers import serving


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    for name in (
        "SLACK_BOT_TOKEN",
        "SLACK_SIGNING_SECRET",
        "SLACK_APP_TOKEN",
        "SLACK_API_URL",
        "BATON_CONFIG",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'baton.db'}")
    return monkeypatch


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    fake = FakeSlack().start()
    yield fake
    fake.stop()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _fails_in_one_line(capsys: pytest.CaptureFixture[str], argv: list[str], code: int, *needles: str) -> str:
    assert app.main(argv) == code
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    for needle in needles:
        assert needle in err, err
    return err


def test_serve_with_a_token_slack_refuses_says_where_to_get_the_right_one(
    env: pytest.MonkeyPatch, slack: FakeSlack, capsys: pytest.CaptureFixture[str]
) -> None:
    env.setenv("SLACK_BOT_TOKEN", "xoxb-typo")
    env.setenv("SLACK_SIGNING_SECRET", "s")
    env.setenv("SLACK_API_URL", slack.base_url)
    _fails_in_one_line(capsys, ["serve"], 2, "Slack refused SLACK_BOT_TOKEN", "OAuth & Permissions")


def _serve_captured(env: pytest.MonkeyPatch) -> dict[str, Any]:
    """Run ``app.py serve`` up to the point it would block serving; returns what it would serve."""
    import bot.server
    import jobs.scheduler

    served: dict[str, Any] = {}
    env.setattr(bot.server, "serve_http", lambda app, db, port, **kw: served.update(app=app, db=db, **kw))
    env.setattr(jobs.scheduler, "build_scheduler", lambda *_a, **_k: SimpleNamespace(start=lambda: None))
    assert app.main(["serve"]) == 0
    return served


def _health(url: str) -> httpx.Response:
    return httpx.get(url + "/healthz", timeout=5)


def test_serve_when_slack_cannot_be_reached_starts_not_ready_and_becomes_ready_when_it_answers(
    env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import bot.app

    port = _closed_port()
    env.setenv("SLACK_BOT_TOKEN", "xoxb-test")
    env.setenv("SLACK_SIGNING_SECRET", "s")
    env.setenv("SLACK_API_URL", f"http://127.0.0.1:{port}/api/")
    env.setenv("BATON_INGEST_TOKEN", "ingest-secret")
    env.setattr(bot.app, "RETRY_FIRST_SECONDS", 0.05)
    env.setattr(bot.app, "RETRY_MAX_SECONDS", 0.2)
    served = _serve_captured(env)
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert f"cannot reach Slack at http://127.0.0.1:{port}" in err and "serving anyway" in err
    wsgi = create_wsgi(served["app"], served["db"], served["api"], served["slack_problem"])
    with serving(wsgi) as url:
        health = _health(url)
        assert health.status_code == 503 and health.json()["status"] == "slack unreachable"
        ingest = httpx.post(url + "/api/v1/signals", content=b"", headers={"Authorization": "Bearer wrong"})
        assert ingest.status_code == 401  # the ingest API answers while Slack is away
        fake = FakeSlack(port=port).start()  # Slack comes back where it was expected
        try:
            assert served["slack_problem"].__self__.wait(timeout=10), "never became ready"
            assert _health(url).json() == {"status": "ok"}
        finally:
            fake.stop()


def test_serve_when_slack_answers_500_starts_not_ready(
    env: pytest.MonkeyPatch, slack: FakeSlack, capsys: pytest.CaptureFixture[str]
) -> None:
    import bot.app

    env.setattr(bot.app, "RETRY_FIRST_SECONDS", 0.05)
    slack.fail["auth.test"] = [(500, {}, {"ok": False, "error": "fatal_error"})]
    env.setenv("SLACK_BOT_TOKEN", slack.token)
    env.setenv("SLACK_SIGNING_SECRET", "s")
    env.setenv("SLACK_API_URL", slack.base_url)
    served = _serve_captured(env)
    assert "Slack answered auth.test with HTTP 500 (fatal_error)" in capsys.readouterr().err
    assert served["slack_problem"].__self__.wait(timeout=10)  # the next auth.test answers: ready


def test_a_scan_that_cannot_send_keeps_the_alerts_and_says_why(
    env: pytest.MonkeyPatch, slack: FakeSlack, capsys: pytest.CaptureFixture[str]
) -> None:
    env.setenv("SLACK_BOT_TOKEN", "xoxb-revoked")
    env.setenv("SLACK_API_URL", slack.base_url)
    assert app.main(["scan", "--as-of", "2026-11-30"]) == 0
    err = capsys.readouterr().err
    assert "not sent to Slack yet (they wait in the outbox): Slack refused SLACK_BOT_TOKEN" in err


def test_remind_with_a_refused_token_asks_slack_once_and_says_so_in_one_line(
    env: pytest.MonkeyPatch, slack: FakeSlack, capsys: pytest.CaptureFixture[str]
) -> None:
    """Mapping CSM emails and delivering both need Slack: one auth.test, one line, no client log noise."""
    env.setenv("SLACK_BOT_TOKEN", "xoxb-revoked")
    env.setenv("SLACK_API_URL", slack.base_url)
    import bot.app

    asked: list[str] = []
    real = bot.app.slack_problem
    env.setattr(bot.app, "slack_problem", lambda s: asked.append(s.slack_bot_token) or real(s))
    app._checked.clear()
    assert app.main(["remind", "--as-of", "2026-11-30"]) == 0
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert asked == ["xoxb-revoked"]
    assert len(err) == 2 and all("Slack refused SLACK_BOT_TOKEN" in line for line in err), err


def test_a_closed_pipe_is_not_a_failure(env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    def reader_went_away(*a: object, **k: object) -> int:
        raise BrokenPipeError(32, "Broken pipe")  # `app.py health --json | head`

    env.setattr(app, "_dispatch", reader_went_away)
    stdout = app.sys.stdout
    try:
        assert app.main(["health"]) == 0
    finally:
        app.sys.stdout = stdout
    assert capsys.readouterr().err == ""


def test_the_demo_database_lives_in_the_data_dir(
    env: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env.setenv("BATON_DATA_DIR", str(tmp_path))  # the image: /data, the volume, not the read-only /app
    assert app.main(["demo"]) == 0
    demo = tmp_path / "baton-demo.db"
    assert demo.exists() and str(demo) in capsys.readouterr().out


def test_an_unreachable_database_is_one_line_with_the_url_but_not_its_password(
    env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    env.setenv("DATABASE_URL", f"postgres://baton:hunter2@127.0.0.1:{_closed_port()}/baton")
    err = _fails_in_one_line(
        capsys, ["migrate"], 1, "the database postgresql+psycopg://baton:***@", "DATABASE_URL"
    )
    assert "hunter2" not in err


def test_a_database_file_in_a_missing_folder_is_one_line(
    env: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'no' / 'such' / 'baton.db'}")
    _fails_in_one_line(capsys, ["health"], 1, "unable to open database file", "Check DATABASE_URL")


def test_a_configuration_mistake_is_one_line(
    env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    env.setenv("BATON_CONFIG", "/nowhere/baton.yml")
    _fails_in_one_line(capsys, ["scan"], 2, "BATON_CONFIG=/nowhere/baton.yml: no such file")


def test_an_unexpected_failure_is_one_line_unless_debugging(
    env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def boom(*a: object, **k: object) -> int:
        raise RuntimeError("the disk is full\nand more")

    env.setattr(app, "_dispatch", boom)
    _fails_in_one_line(capsys, ["migrate"], 1, "migrate failed: the disk is full and more", "BATON_DEBUG=1")
    env.setenv("BATON_DEBUG", "1")
    with pytest.raises(RuntimeError):
        app.main(["migrate"])


SUBCOMMANDS = ["serve", "demo", "migrate", "ingest", "pull", "scan", "health", "digest", "remind"]


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_every_subcommand_explains_itself_with_an_example(command: str, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        app.main([command, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "example:\n" in out and f"python app.py {command}" in out.split("example:")[-1], out


@pytest.mark.parametrize(
    ("command", "fields"),
    [
        ("scan", ["account_id", "severity", "reasons", "data_through"]),
        ("health", ["score", "band", "last_data", "drivers"]),
        ("remind", ["account_id", "name", "recipient", "stage", "touch", "due"]),
        ("digest", ["churn_rate", "nrr", "trend"]),
    ],
)
def test_the_help_names_what_the_json_carries(command: str, fields: list[str], capsys) -> None:
    with pytest.raises(SystemExit):
        app.main([command, "--help"])
    out = capsys.readouterr().out
    assert "--json:" in out and all(f in out for f in fields), out


def test_migrate_and_empty_runs_speak_the_teams_language(env: pytest.MonkeyPatch, capsys) -> None:
    env.setenv("BATON_LOCALE", "ja")
    assert app.main(["migrate"]) == 0
    assert capsys.readouterr().out == "データベースは最新の状態です。\n"
    assert app.main(["health", "--as-of", "2026-11-30"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("2026年11月30日時点のヘルススコア（利用データなし）\n")
    assert "2026年11月30日までの利用データがありません。" in out
    env.setenv("BATON_LOCALE", "en")
    assert app.main(["migrate"]) == 0
    assert capsys.readouterr().out == "database is at the latest migration\n"


def test_the_digest_draws_progress_only_when_asked(env: pytest.MonkeyPatch, capsys) -> None:
    env.delenv("BATON_PROGRESS", raising=False)
    assert app.main(["digest", "--as-of", "2026-12-07", "--json"]) == 0
    assert capsys.readouterr().err == ""  # stderr is not a terminal here: nothing drawn
    env.setenv("BATON_PROGRESS", "1")
    assert app.main(["digest", "--as-of", "2026-12-07", "--json"]) == 0
    err = capsys.readouterr().err
    assert "100%" in err and "10/10" in err and "steps" in err


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["scan", "--as-of", "2026/13/01"], "use YYYY-MM-DD, e.g. 2026-11-30"),
        (["bogus"], "invalid choice: 'bogus'"),
        (["ingest"], "the following arguments are required: kind, file"),
        (["model", "backtest", "--budget", "-1"], "give alerts per 100 accounts per week"),
        (["model", "backtest", "--budget", "nan"], "give alerts per 100 accounts per week"),
    ],
)
def test_a_command_line_mistake_is_one_line_with_where_to_look(
    env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], argv: list[str], needle: str
) -> None:
    with pytest.raises(SystemExit) as exit_:
        app.main(argv)
    err = capsys.readouterr().err.strip()
    assert exit_.value.code == 2 and len(err.splitlines()) == 1 and needle in err and "--help)" in err
