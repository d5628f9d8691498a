#!/usr/bin/env bash
# The HTML pages in a real headless browser: Debian's chromium (installed with apt-get when
# missing) driven by playwright-core from npm, against the service binaries: every
# services/*/tests/browser folder. Screenshots go to target/screenshots/.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ ! -x /usr/bin/chromium ]]; then
    if [[ $(id -u) -ne 0 ]]; then
        echo "browser-test: install Debian's chromium (sudo apt-get install -y chromium)" >&2
        exit 1
    fi
    echo "browser-test: installing chromium" >&2
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
# deploy/test.sh has just built auth and gateway (cargo builds each for its own integration
# tests); the portal's test runs the whole embedded platform.
if [[ ${BROWSER_TEST_PREBUILT:-} != 1 || ! -x target/debug/auth || ! -x target/debug/gateway || ! -x target/debug/platform ]]; then
    cargo build --locked -p auth -p gateway -p platform
fi
for suite in services/*/tests/browser; do
    echo "browser-test: $suite" >&2
    (cd "$suite" && npm ci --no-audit --no-fund --loglevel=error && node --test)
done
