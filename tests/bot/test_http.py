"""The HTTP endpoint: Slack's signature rules, health check, unknown routes, and the real entry point."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest

from tests.bot.conftest import Baton, sign

pytestmark = pytest.mark.served  # the socket itself: Slack's requests over the production server
ROOT = Path(__file__).resolve().parents[2]
BODY = urlencode(
    {
        "command": "/handoff",
        "text": "help",
        "user_id": "U1",
        "trigger_id": "t",
        "response_url": "http://127.0.0.1:9/x",
        "team_id": "T1",
    }
)


def test_wrong_signature_is_401_and_runs_nothing(baton: Baton) -> None:
    resp = baton.post(BODY, sign(BODY, secret="not-the-secret"))
    assert resp.status_code == 401
    assert not baton.slack.calls or all(c.method == "auth.test" for c in baton.slack.calls)


def test_timestamp_older_than_five_minutes_is_401(baton: Baton) -> None:
    resp = baton.post(BODY, sign(BODY, timestamp=int(time.time()) - 6 * 60))
    assert resp.status_code == 401


def test_missing_signature_headers_are_401(baton: Baton) -> None:
    resp = baton.http.post(
        baton.url + "/slack/events",
        content=BODY,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert resp.status_code == 401


def test_healthz_and_unknown_routes(baton: Baton) -> None:
    assert baton.http.get(baton.url + "/healthz").json() == {"status": "ok"}
    assert baton.http.get(baton.url + "/nope").status_code == 404
    assert baton.http.get(baton.url + "/slack/events").status_code == 405


def test_healthz_is_503_when_the_database_is_gone(tmp_path: Path) -> None:
    from bot.server import create_wsgi
    from storage import Database

    db = Database(f"sqlite:///{tmp_path}/missing-dir/x.db")
    seen: list[str] = []
    body = b"".join(
        create_wsgi(None, db)(
            {"PATH_INFO": "/healthz", "REQUEST_METHOD": "GET"}, lambda status, headers: seen.append(status)
        )
    )
    assert seen == ["503 Service Unavailable"] and b"database unavailable" in body


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_app_py_serve_runs_http_mode_with_migrations(tmp_path: Path, slack) -> None:
    port = _free_port()
    env = {
        **os.environ,
        "PORT": str(port),
        "DATABASE_URL": f"sqlite:///{tmp_path}/serve.db",
        "SLACK_BOT_TOKEN": slack.token,
        "SLACK_SIGNING_SECRET": "s3cret",
        "SLACK_API_URL": slack.base_url,
    }
    env.pop("SLACK_APP_TOKEN", None)
    proc = subprocess.Popen(
        [sys.executable, "app.py", "serve"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"server did not come up: {proc.stdout.read() if proc.stdout else ''}")
            time.sleep(0.1)
        resp = httpx.post(f"http://127.0.0.1:{port}/slack/events", content=BODY, headers=sign(BODY, "s3cret"))
        assert resp.status_code == 200
        bad = httpx.post(f"http://127.0.0.1:{port}/slack/events", content=BODY, headers=sign(BODY, "other"))
        assert bad.status_code == 401
    finally:
        proc.terminate()
        out = proc.communicate(timeout=10)[0]
    assert "s3cret" not in out and slack.token not in out  # secrets never logged


def test_serve_without_tokens_explains_what_is_missing(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLACK_")}
    env["DATABASE_URL"] = f"sqlite:///{tmp_path}/x.db"
    proc = subprocess.run(
        [sys.executable, "app.py", "serve"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=30
    )
    assert proc.returncode == 2
    assert "SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET" in proc.stderr and "demo" in proc.stderr


def test_a_served_app_leaves_no_threads_behind_once_stopped(db) -> None:
    """Waitress's close() alone leaves its worker threads running: the test server ends them too, so a long
    suite does not pile up hundreds of idle threads."""
    import threading

    from bot.server import create_wsgi
    from tests.servers import serving

    before = {t.ident for t in threading.enumerate()}
    with serving(create_wsgi(None, db), threads=4) as url, httpx.Client(timeout=5) as http:
        assert http.get(url + "/healthz").status_code == 200
    left = [t.name for t in threading.enumerate() if t.ident not in before and t.is_alive()]
    assert left == []
