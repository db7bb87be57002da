#!/usr/bin/env bash
# Runs the whole test suite against a real local stack (Kafka, PostgreSQL, Redis).
# Installs what is missing first; extra arguments go to pytest.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/install-prereqs.sh
bash scripts/bootstrap.sh
.venv/bin/grim schemas check
started_here=0
if ! .venv/bin/grim stack status --quiet >/dev/null 2>&1; then
    started_here=1
fi
cleanup() {
    if [ "$started_here" = 1 ] && [ "${GRIM_KEEP_STACK:-0}" != 1 ]; then
        .venv/bin/grim stack down || true
    fi
}
trap cleanup EXIT
.venv/bin/grim stack up
.venv/bin/python -m pytest -p no:cacheprovider "$@"
