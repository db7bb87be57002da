#!/usr/bin/env bash
# Runs the product locally: installs what is missing, then `grim demo`, which starts
# Kafka (KRaft), PostgreSQL and Redis under .run/, applies migrations, creates the
# topics, starts every service with sandbox stand-ins (fake Telegram, sandbox PIX
# gateway, fake Graph API), seeds a demo seller, simulates traffic and prints the
# attribution and CAPI delivery report. Extra arguments go to `grim demo`
# (e.g. --clicks 200 --stop). Stop the services with `.venv/bin/grim services down`.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/install-prereqs.sh
bash scripts/bootstrap.sh
exec .venv/bin/grim demo "$@"
