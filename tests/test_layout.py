"""The layout is the architecture: these rules are read off the imports, so breaking one fails here.

- ``accounts/`` (names, lookup, tiers, health, reasons) is what the handoff, the alerts and the digest
  share; it knows nothing of them.
- ``alerts/`` and ``digest/`` do not import each other.
- ``bot/`` is the only package that knows Slack.
- Only ``clock.py`` reads the wall clock; everything else is handed a clock (or a day).
- No import cycles between the top-level packages. Entry points (``app.py``, ``cli.py`` and each
  package's ``cli.py``) sit above them all: they may import anything, and nothing but an entry point
  imports them."""

from __future__ import annotations

import ast
from collections import defaultdict
from itertools import pairwise
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOT_APP = {"tests", "benchmarks", ".venv", ".git"}  # the app's code is everything else


def _app_files() -> list[Path]:
    return sorted(
        p
        for p in ROOT.rglob("*.py")
        if not (set(p.relative_to(ROOT).parts) & NOT_APP) and not p.relative_to(ROOT).parts[0].startswith(".")
    )


def _top(path: Path) -> str:
    parts = path.relative_to(ROOT).parts
    return parts[0] if len(parts) > 1 else path.stem


def _is_entry(path: Path) -> bool:
    return path.name == "cli.py" or path.relative_to(ROOT).parts == ("app.py",)


def _imports(path: Path) -> list[tuple[str, int]]:
    """Every absolute import in the file, lazy ones inside functions too, as (module, line)."""
    out: list[tuple[str, int]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.module, node.lineno))
    return out


FILES = _app_files()
TOPS = {_top(p) for p in FILES}


def _where(path: Path, line: int, module: str) -> str:
    return f"{path.relative_to(ROOT)}:{line} imports {module}"


def _importing(src: str, dst: str) -> list[str]:
    """Where package ``src`` imports package ``dst``."""
    return [
        _where(p, line, m)
        for p in FILES
        if _top(p) == src
        for m, line in _imports(p)
        if m.split(".")[0] == dst
    ]


def test_the_files_are_found() -> None:
    assert {"accounts", "alerts", "bot", "digest", "handoff", "ingest", "model", "storage"} <= TOPS
    assert any(_is_entry(p) for p in FILES) and not any("tests" in p.parts for p in FILES)


def test_alerts_and_digest_do_not_import_each_other() -> None:
    assert _importing("digest", "alerts") == []
    assert _importing("alerts", "digest") == []


def test_accounts_knows_none_of_its_users() -> None:
    allowed = {"accounts", "settings", "storage", "clock"}
    used = {m.split(".")[0] for p in FILES if _top(p) == "accounts" for m, _ in _imports(p)}
    assert not (used & TOPS) - allowed, sorted((used & TOPS) - allowed)


def test_only_bot_knows_slack() -> None:
    slack = [
        _where(p, line, m)
        for p in FILES
        if _top(p) != "bot"
        for m, line in _imports(p)
        if m.split(".")[0] in ("slack_sdk", "slack_bolt")
    ]
    assert slack == []


def test_nothing_but_an_entry_point_imports_an_entry_point() -> None:
    entries = {".".join(p.relative_to(ROOT).with_suffix("").parts) for p in FILES if _is_entry(p)}
    wrong = [
        _where(p, line, m)
        for p in FILES
        if not _is_entry(p)
        for m, line in _imports(p)
        if m in entries or any(m.startswith(e + ".") for e in entries)
    ]
    assert wrong == []


def _package_graph() -> dict[str, dict[str, str]]:
    """top-level package -> the packages it imports, each with one place it does (entry points left out)."""
    graph: dict[str, dict[str, str]] = defaultdict(dict)
    for p in FILES:
        if _is_entry(p):
            continue
        src = _top(p)
        for m, line in _imports(p):
            dst = m.split(".")[0]
            if dst in TOPS and dst != src:
                graph[src].setdefault(dst, _where(p, line, m))
    return graph


def _cycle(graph: dict[str, dict[str, str]]) -> list[str] | None:
    """One cycle as the places that close it, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, {})):
            if state.get(nxt) == 1:
                ring = [*path[path.index(nxt) :], nxt]
                return [graph[a][b] for a, b in pairwise(ring)]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_import_cycles_between_top_level_packages() -> None:
    found = _cycle(_package_graph())
    assert found is None, "a cycle: " + "; ".join(found or [])


def test_the_cycle_finder_finds_cycles() -> None:
    ring = {"a": {"b": "a->b"}, "b": {"c": "b->c"}, "c": {"a": "c->a"}}
    assert _cycle(ring) == ["a->b", "b->c", "c->a"]
    assert _cycle({"a": {"b": "a->b"}, "b": {}}) is None


# calls that read the calendar clock; time.monotonic (a duration, never a day) is not one of them
_WALL = {("datetime", "now"), ("datetime", "utcnow"), ("datetime", "today"), ("date", "today")}
_WALL |= {("time", n) for n in ("time", "time_ns", "localtime", "gmtime", "ctime")}


def _wall_clock_reads(path: Path, root: Path = ROOT) -> list[str]:
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            base = node.func.value
            name = (
                base.id
                if isinstance(base, ast.Name)
                else base.attr
                if isinstance(base, ast.Attribute)
                else ""
            )
            if (name, node.func.attr) in _WALL:
                out.append(f"{path.relative_to(root)}:{node.lineno} {ast.unparse(node.func)}()")
    return out


def test_only_clock_reads_the_wall_clock() -> None:
    """The day is the team's, passed in: a read of the wall clock anywhere else is a test that passes
    at one hour and fails at another. This covers every path, where the faketime passes of scripts/test
    cover the paths whose outcome depends on the hour."""
    reads = [r for p in FILES if p.relative_to(ROOT).parts != ("clock.py",) for r in _wall_clock_reads(p)]
    assert reads == []


def test_the_wall_clock_finder_finds_reads(tmp_path: Path) -> None:
    src = tmp_path / "x.py"
    src.write_text(
        "import datetime as dt, time\nfrom datetime import date\n"
        "a = dt.datetime.now()\nb = date.today()\nc = time.time()\nd = time.monotonic()\n"
    )
    found = [r.split(" ")[1] for r in _wall_clock_reads(src, tmp_path)]
    assert found == ["dt.datetime.now()", "date.today()", "time.time()"]
