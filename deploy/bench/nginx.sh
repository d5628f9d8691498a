#!/usr/bin/env bash
# nginx side of the gateway benchmark: (a) trivial upstream, (b) plain proxy, (c) auth_request + njs
# introspection with proxy_cache. Runs two private nginx, beside any system nginx: (a) from
# <workdir>/upstream, (b) and (c) from <workdir>.
#
# Usage: deploy/bench/nginx.sh start|stop <workdir>
# Environment (start):
#   INTROSPECT_URL            RFC 7662 endpoint (default http://127.0.0.1:18082/oauth2/introspect)
#   INTROSPECT_CLIENT_ID      client id for HTTP Basic at the introspection endpoint (required)
#   INTROSPECT_CLIENT_SECRET  its secret (required)
#   PORT_A PORT_B PORT_C      listen ports (default 18090 18091 18092), all on 127.0.0.1
# `start` also installs nginx, njs and wrk with apt-get when missing (load.sh needs wrk).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
die() { echo "nginx.sh: error: $*" >&2; exit 1; }

[[ $# -eq 2 ]] || die "usage: $0 start|stop <workdir>"
CMD=$1
WORKDIR=$(realpath -m "$2")
PORT_A=${PORT_A:-18090} PORT_B=${PORT_B:-18091} PORT_C=${PORT_C:-18092}

install_missing() {
    local pkgs=() p
    # Debian's `nginx` has http_auth_request_module built in; njs is a separate dynamic module.
    for p in nginx libnginx-mod-http-js wrk; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || pkgs+=("$p")
    done
    [[ ${#pkgs[@]} -eq 0 ]] && return
    echo "nginx.sh: installing ${pkgs[*]}" >&2
    # Where an init system runs, the package also starts the system nginx on :80; harmless, ours
    # uses its own ports and paths.
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkgs[@]}" >/dev/null
}

# Debian ships the njs module in /usr/lib/nginx/modules; the absolute path matters because
# `-p <workdir>` would make a relative `modules/...` resolve inside the workdir.
js_module() {
    local f
    for f in /usr/lib/nginx/modules/ngx_http_js_module.so /usr/share/nginx/modules/ngx_http_js_module.so; do
        [[ -f $f ]] && { echo "$f"; return; }
    done
    die "ngx_http_js_module.so not found (is libnginx-mod-http-js installed?)"
}

# Escape a value for the replacement side of sed s|...|...|.
sed_val() { printf '%s' "$1" | sed 's/[\\|&]/\\&/g'; }

render() { # template, workdir
    : "${INTROSPECT_CLIENT_ID:?INTROSPECT_CLIENT_ID is required}"
    : "${INTROSPECT_CLIENT_SECRET:?INTROSPECT_CLIENT_SECRET is required}"
    local url=${INTROSPECT_URL:-http://127.0.0.1:18082/oauth2/introspect} user_line=""
    # RFC 6749 2.3.1 form-encodes id and secret before Basic; ours are plain tokens, so as-is.
    local creds; creds=$(printf '%s:%s' "$INTROSPECT_CLIENT_ID" "$INTROSPECT_CLIENT_SECRET" | base64 -w0)
    # As root the workers would otherwise run as nobody and could not write into a private workdir.
    [[ $EUID -eq 0 ]] && user_line="user root;"
    local template=$1 dir=$2
    mkdir -p "$dir"/{logs,tmp,cache}
    cp "$HERE/introspect.js" "$dir/introspect.js"
    sed -e "s|@WORKDIR@|$(sed_val "$dir")|g" -e "s|@JS_MODULE@|$(js_module)|g" \
        -e "s|@USER_LINE@|$user_line|g" -e "s|@BASIC_CREDS@|$creds|g" \
        -e "s|@INTROSPECT_URL@|$(sed_val "$url")|g" \
        -e "s|@PORT_A@|$PORT_A|g" -e "s|@PORT_B@|$PORT_B|g" -e "s|@PORT_C@|$PORT_C|g" \
        "$HERE/$template" >"$dir/nginx.conf"
}

running() { [[ -s $1/nginx.pid ]] && kill -0 "$(cat "$1/nginx.pid")" 2>/dev/null; }

launch() { # workdir
    # -e: the compiled-in /var/log/nginx/error.log is opened before the config is read.
    nginx -q -t -p "$1" -c "$1/nginx.conf" -e "$1/logs/error.log" || die "config test failed: $1/nginx.conf"
    nginx -p "$1" -c "$1/nginx.conf" -e "$1/logs/error.log"
}

halt() { # workdir
    running "$1" || return 0
    local pid; pid=$(cat "$1/nginx.pid")
    kill -TERM "$pid"   # fast shutdown: the benchmark has nothing in flight worth draining
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
    die "nginx (pid $pid) still running after 5 s"
}

case $CMD in
start)
    install_missing
    running "$WORKDIR" && die "already running (pid $(cat "$WORKDIR/nginx.pid")); stop it first"
    render upstream.conf.tmpl "$WORKDIR/upstream"
    render nginx.conf.tmpl "$WORKDIR"
    launch "$WORKDIR/upstream"
    launch "$WORKDIR"
    # Any HTTP answer counts (c answers 401 without a token); curl prints 000 while closed.
    for port in "$PORT_A" "$PORT_B" "$PORT_C"; do
        for _ in $(seq 50); do
            [[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/") != 000 ]] && continue 2
            sleep 0.1
        done
        die "port $port does not answer after 5 s; see $WORKDIR/logs/error.log"
    done
    echo "nginx.sh: running (pids $(cat "$WORKDIR/upstream/nginx.pid") $(cat "$WORKDIR/nginx.pid")) on 127.0.0.1:$PORT_A/$PORT_B/$PORT_C" >&2
    ;;
stop)
    halt "$WORKDIR"
    halt "$WORKDIR/upstream"
    echo "nginx.sh: stopped" >&2
    ;;
*) die "usage: $0 start|stop <workdir>" ;;
esac
