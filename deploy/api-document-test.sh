#!/usr/bin/env bash
# The API document tells the truth: the embedded platform (target/debug/platform) against its
# own OpenAPI document, validated and fuzzed by Schemathesis with every check
# (services/platform/tests/api-document). Python in a venv under target/api-document
# (deploy/python-venv.sh), from the pinned requirements.
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=services/platform/tests/api-document
VENV=target/api-document/venv

deploy/python-venv.sh "$VENV" "$DIR/requirements.txt"
if [[ ${API_DOCUMENT_PREBUILT:-} != 1 || ! -x target/debug/platform ]]; then
    cargo build --locked -p platform
fi
"$VENV/bin/python" "$DIR/check.py"
