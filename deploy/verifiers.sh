#!/usr/bin/env bash
# The receivers' side of webhooks: the `standardwebhooks` packages from PyPI and npm, with
# which the webhook tests verify deliveries as partners would (services/webhook/tests/verify).
# Python in a venv under target/verifiers (python3-venv installed with apt-get when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=services/webhook/tests/verify
VENV=target/verifiers/venv

if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' 2>/dev/null; then
    [[ $(id -u) -eq 0 ]] || { echo "verifiers: install python3-venv" >&2; exit 1; }
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
fi
if [[ ! -x $VENV/bin/python ]] || ! cmp -s "$DIR/requirements.txt" "$VENV/requirements.txt"; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check -r "$DIR/requirements.txt"
    cp "$DIR/requirements.txt" "$VENV/requirements.txt"
fi
(cd "$DIR" && npm ci --no-audit --no-fund --loglevel=error)
echo "verifiers: python $("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("standardwebhooks"))'), npm $(node -p 'require("./'"$DIR"'/node_modules/standardwebhooks/package.json").version')"
