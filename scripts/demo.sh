#!/usr/bin/env bash
# Runs the product locally: installs what is missing, starts Kafka (KRaft),
# PostgreSQL and Redis under .run/, applies migrations, creates the topics and
# shows the stack's status. Extra arguments go to `grim demo`.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/install-prereqs.sh
bash scripts/bootstrap.sh
.venv/bin/grim stack up
.venv/bin/grim db migrate
.venv/bin/grim topics create
.venv/bin/grim stack status
