"""The image cannot be built here (no Docker engine), so its promises are checked as text."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_image_runs_as_non_root_with_a_health_check_and_ships_every_package() -> None:
    text = (ROOT / "Dockerfile").read_text()
    user = re.findall(r"^USER (\S+)", text, re.M)
    assert user and user[-1] not in ("root", "0")
    assert re.search(r"^HEALTHCHECK .*", text, re.M) and "/healthz" in text
    copied = " ".join(re.findall(r"^COPY (?!--from).*", text, re.M))
    packages = [p.name for p in ROOT.iterdir() if (p / "__init__.py").exists() and p.name != "tests"]
    modules = [p.name for p in ROOT.glob("*.py")]
    for name in packages + modules + ["baton.yml"]:
        assert name in copied, f"{name} is not copied into the image"


def _pins(lock: str) -> dict[str, str]:
    text = (ROOT / lock).read_text()
    pinned = re.findall(r"^([A-Za-z0-9_.\-]+)==(\S+) \\", text, re.M)
    return {name.lower().replace("_", "-"): version for name, version in pinned}


def test_the_lock_files_pin_every_dependency_with_hashes_within_pyproject_bounds() -> None:
    """A dependency added to pyproject.toml without running scripts/lock fails here, not on a user's box."""
    import tomllib

    from packaging.requirements import Requirement
    from packaging.version import Version

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for lock, deps in (
        ("requirements.lock", project["dependencies"]),
        ("requirements-dev.lock", project["dependencies"] + project["optional-dependencies"]["dev"]),
    ):
        pins = _pins(lock)
        blocks = (ROOT / lock).read_text().split("==")[1:]
        assert blocks and all("--hash=sha256:" in b for b in blocks), f"{lock}: a pin without its hash"
        for dep in deps:
            req = Requirement(dep)
            name = req.name.lower().replace("_", "-")
            assert name in pins, f"{name} is not in {lock}: run scripts/lock"
            pin = pins[name]
            assert req.specifier.contains(pin, prereleases=True), f"{lock}: {name}=={pin} vs {dep}"
    assert Version(_pins("requirements.lock")["waitress"]) >= Version("3.0.1")  # CVE-2024-49768/49769


def test_the_image_installs_the_lock_with_hashes_and_its_code_is_not_the_runtime_users() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert "--require-hashes -r requirements.lock" in text
    assert "--chown=baton" not in text  # root owns the code; baton only reads it (and writes /data)
    assert "chown baton /data" in text
