#!/usr/bin/env bash
# `deploy/python-venv.sh VENV REQUIREMENTS`: a virtualenv at VENV holding the pinned
# REQUIREMENTS from PyPI, made again when they change (python3-venv installed with apt-get when
# missing). The test tools' scripts share it.
set -euo pipefail
VENV=$1
REQUIREMENTS=$2
if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' 2>/dev/null; then
    [[ $(id -u) -eq 0 ]] || { echo "python-venv: install python3-venv" >&2; exit 1; }
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
fi
if [[ ! -x $VENV/bin/python ]] || ! cmp -s "$REQUIREMENTS" "$VENV/requirements.txt"; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check -r "$REQUIREMENTS"
    cp "$REQUIREMENTS" "$VENV/requirements.txt"
fi
