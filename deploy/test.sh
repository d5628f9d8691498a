#!/usr/bin/env bash
# `make test`: lints, then every test against real PostgreSQL, Redis and RabbitMQ started on
# loopback test ports by deploy/servers.sh (installed with apt-get when missing). Servers this
# script started are stopped at the end; servers that were already running are left running.
set -euo pipefail
cd "$(dirname "$0")/.."

started_here=0
if ! deploy/servers.sh status >/dev/null 2>&1; then
    started_here=1
fi
deploy/servers.sh start
if [[ $started_here == 1 ]]; then
    trap 'deploy/servers.sh stop' EXIT
fi
eval "$(deploy/servers.sh env)"

echo "== clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== webhook verifiers (standardwebhooks from PyPI and npm)"
deploy/verifiers.sh

echo "== notification stand-ins (aiosmtpd from PyPI, an SMSC on npm smpp)"
deploy/stand-ins.sh

# Every binary and test at once: the scripts below run these binaries (a build of their own
# would unify other features and compile the dependencies again).
echo "== build"
cargo build --workspace --bins --tests --locked
export BROWSER_TEST_PREBUILT=1 API_DOCUMENT_PREBUILT=1 UP_PREBUILT=1

echo "== tests (PostgreSQL, Redis, RabbitMQ, SQLite, in-process)"
cargo nextest run --workspace --locked --no-fail-fast -E 'not test(/(^|::)rabbitmq_restart::/)'

echo "== images and the Helm chart"
deploy/chart-test.sh

echo "== pages in headless Chromium"
deploy/browser-test.sh

echo "== the API document against the platform (Schemathesis, every check)"
deploy/api-document-test.sh

# It restarts the shared broker, so it runs alone.
echo "== RabbitMQ restart under load"
cargo nextest run --workspace --locked -E 'test(/(^|::)rabbitmq_restart::/)' --test-threads 1 --no-capture

# It restarts every server and kills every service, so it runs last, alone.
echo "== the fault matrix (make up's topology under load; each server restarted, each service killed)"
python3 deploy/fault-matrix.py
