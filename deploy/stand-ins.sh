#!/usr/bin/env bash
# The channels' stand-ins the notification tests send to: a real SMTP server (`aiosmtpd` from
# PyPI, in a venv under target/stand-ins) and a stand-in SMSC on the npm `smpp` package
# (services/notification-dispatch/tests/stand-ins/smsc.js). FCM has no emulator anywhere: the
# tests run their own fake of its API.
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=services/notification-dispatch/tests/stand-ins
VENV=target/stand-ins/venv

deploy/python-venv.sh "$VENV" "$DIR/requirements.txt"
command -v node >/dev/null || {
    [[ $(id -u) -eq 0 ]] || { echo "stand-ins: install nodejs and npm" >&2; exit 1; }
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
}
(cd "$DIR" && npm ci --no-audit --no-fund --loglevel=error)
echo "stand-ins: aiosmtpd $("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("aiosmtpd"))'), smpp $(node -p 'require("./'"$DIR"'/node_modules/smpp/package.json").version')"
