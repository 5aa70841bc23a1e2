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
