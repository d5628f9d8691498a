#!/usr/bin/env bash
# The API document tells the truth: the embedded platform (target/debug/platform) against its
# own OpenAPI document, validated and fuzzed by Schemathesis with every check
# (services/platform/tests/api-document). Python in a venv under target/api-document
# (python3-venv installed with apt-get when missing), from the pinned requirements.
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=services/platform/tests/api-document
VENV=target/api-document/venv

if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' 2>/dev/null; then
    [[ $(id -u) -eq 0 ]] || { echo "api-document: install python3-venv" >&2; exit 1; }
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
fi
if [[ ! -x $VENV/bin/python ]] || ! cmp -s "$DIR/requirements.txt" "$VENV/requirements.txt"; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check -r "$DIR/requirements.txt"
    cp "$DIR/requirements.txt" "$VENV/requirements.txt"
fi
if [[ ${API_DOCUMENT_PREBUILT:-} != 1 || ! -x target/debug/platform ]]; then
    cargo build --locked -p platform
fi
"$VENV/bin/python" "$DIR/check.py"
