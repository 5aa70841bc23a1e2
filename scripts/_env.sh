# Sourced by scripts/run and scripts/test: make .venv and install the project's packages when
# pyproject.toml changed since the last install, so a fresh checkout needs no set-up by hand.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
# Exactly the versions in requirements-dev.lock, each checked against its hash (scripts/lock remakes it).
stamp=".venv/.baton-installed"
want="$(cat pyproject.toml requirements-dev.lock | sha256sum | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  { .venv/bin/python -m pip install -q --require-hashes -r requirements-dev.lock \
      && .venv/bin/python -m pip install -q --no-deps -e . ; } >.venv/pip.log 2>&1 \
    || { cat .venv/pip.log >&2; exit 1; }
  echo "$want" > "$stamp"
fi
export PATH="$ROOT/.venv/bin:$PATH"
