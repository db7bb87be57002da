#!/usr/bin/env bash
# Installs what Grim needs on Debian/Ubuntu: PostgreSQL, Redis, Maven and a Java 17
# runtime for `grim stack up`; Prometheus (promtool and the server the observability
# tests run), Chromium (the bridge page's browser test) and wrk (benchmarks).
# Idempotent: installs only what is missing, touches apt only then.
# Needs root (CI runs as root) or passwordless sudo.
set -euo pipefail

log() { printf 'install-prereqs: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

missing=()

if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    missing+=(postgresql)
fi
if ! command -v redis-server >/dev/null 2>&1; then
    missing+=(redis-server)
fi
if ! command -v java >/dev/null 2>&1; then
    missing+=(openjdk-17-jre-headless)
fi
if ! command -v mvn >/dev/null 2>&1; then
    missing+=(maven)
fi
if ! command -v promtool >/dev/null 2>&1; then
    missing+=(prometheus)
fi
if [ ! -x /usr/bin/chromium ]; then
    missing+=(chromium)
fi
if ! command -v wrk >/dev/null 2>&1; then
    missing+=(wrk)
fi

if [ "${#missing[@]}" -eq 0 ]; then
    log "nothing to install: postgresql, redis-server, java, mvn, promtool, chromium, wrk"
    exit 0
fi

command -v apt-get >/dev/null 2>&1 \
    || die "apt-get not found; install by hand: ${missing[*]}"

if [ "$(id -u)" -eq 0 ]; then
    as_root=()
elif command -v sudo >/dev/null 2>&1; then
    as_root=(sudo)
else
    die "not root and no sudo; run as root to install: ${missing[*]}"
fi

log "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update
"${as_root[@]}" apt-get install -y --no-install-recommends "${missing[@]}"

# Fail loudly when a package installed but its binary is still not there.
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || die "initdb still missing after install"
command -v redis-server >/dev/null 2>&1 || die "redis-server still missing after install"
command -v java >/dev/null 2>&1 || die "java still missing after install"
command -v mvn >/dev/null 2>&1 || die "mvn still missing after install"
[ -x /usr/bin/chromium ] || die "chromium still missing after install"
command -v wrk >/dev/null 2>&1 || die "wrk still missing after install"
command -v promtool >/dev/null 2>&1 || die "promtool still missing after install"
log "done: ${missing[*]}"
