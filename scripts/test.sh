#!/usr/bin/env bash
# Runs the whole test suite against a real local stack (Kafka, PostgreSQL, Redis).
# Installs what is missing first; extra arguments go to pytest.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/install-prereqs.sh
bash scripts/bootstrap.sh
.venv/bin/grim schemas check
# Stop the stack afterwards only if this run started it (GRIM_KEEP_STACK=1 keeps it).
started_here=1
if .venv/bin/python - <<'PY'
import sys
from grim.stack import Stack, StackConfig
states = [s.state for s in Stack(StackConfig.from_env()).status()]
sys.exit(0 if all(s in ("running", "external") for s in states) else 1)
PY
then
    started_here=0
fi
cleanup() {
    if [ "$started_here" = 1 ] && [ "${GRIM_KEEP_STACK:-0}" != 1 ]; then
        .venv/bin/grim stack down || true
    fi
}
trap cleanup EXIT
.venv/bin/grim stack up
.venv/bin/python -m pytest -p no:cacheprovider "$@"
