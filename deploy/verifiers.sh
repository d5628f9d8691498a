#!/usr/bin/env bash
# The receivers' side of webhooks: the `standardwebhooks` packages from PyPI and npm, with
# which the webhook tests verify deliveries as partners would (services/webhook/tests/verify).
# Python in a venv under target/verifiers (deploy/python-venv.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=services/webhook/tests/verify
VENV=target/verifiers/venv

deploy/python-venv.sh "$VENV" "$DIR/requirements.txt"
(cd "$DIR" && npm ci --no-audit --no-fund --loglevel=error)
echo "verifiers: python $("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("standardwebhooks"))'), npm $(node -p 'require("./'"$DIR"'/node_modules/standardwebhooks/package.json").version')"
