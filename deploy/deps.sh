#!/usr/bin/env bash
# Installs the system libraries the build links against, when missing: libpq (PostgreSQL
# client, for diesel's postgres backend) and SQLite. Needs root for apt-get; otherwise says what
# to install.
set -euo pipefail
missing=()
for pkg in libpq-dev libsqlite3-dev pkg-config; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0
if [[ $(id -u) -ne 0 ]]; then
    echo "deps: please install: ${missing[*]} (e.g. sudo apt-get install -y ${missing[*]})" >&2
    exit 1
fi
echo "deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq "${missing[@]}" >/dev/null
