#!/usr/bin/env bash
# `make bench-gateway`: the production topology on loopback (release builds; auth and
# introspection on PostgreSQL, RabbitMQ, the gateway on Redis), then
#   1. the gateway against nginx, side by side on one trivial upstream (deploy/bench/load.sh):
#      (a) the upstream, (b) nginx proxying, (c) nginx auth_request + njs introspection with
#      proxy_cache, (d) the gateway validating every token from its warm cache;
#   2. introspection of active JWTs (1,000 distinct tokens) straight at the introspection
#      service, with wrk.
# Everything shares this machine's cores with the load generator; run it on a quiet machine.
# DURATION (10s), CONNECTIONS (64) and ROUNDS (5) tune the runs; services log at RUST_LOG
# (default info, as deployed). PROFILE=1 only profiles the gateway under (d)'s load instead:
# `perf record` for 10 s, the hottest functions, and a flame graph in
# target/bench-gateway/gateway.svg (perf from apt-get, inferno from cargo install, when missing).
# HOLD=1 only starts everything and waits, to look at it by hand.
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=target/bench-gateway
mkdir -p "$DIR"
deploy/servers.sh start >/dev/null
eval "$(deploy/servers.sh env)"
cargo build --release --locked -p auth -p introspection -p gateway

PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    deploy/bench/nginx.sh stop "$DIR/nginx" >/dev/null 2>&1 || true
}
trap cleanup EXIT

PG=${PLATFORM_TEST_POSTGRES_URL%/*}
for db in bench_auth bench_introspection; do
    psql -q "$PLATFORM_TEST_POSTGRES_URL" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db"
done
EXCHANGE=bench.$RANDOM
common=(PLATFORM_BUS__KIND=rabbitmq "PLATFORM_BUS__URL=$PLATFORM_TEST_AMQP_URL" "PLATFORM_BUS__EXCHANGE=$EXCHANGE" "RUST_LOG=${RUST_LOG:-info}")
ISSUER=http://127.0.0.1:18080

run() { # name, env…
    local name=$1; shift
    env "${common[@]}" "$@" "target/release/$name" >"$DIR/$name.log" 2>&1 &
    PIDS+=($!)
}
ready() { for _ in $(seq 1 200); do curl -sf "$1/readyz" >/dev/null && return; sleep 0.1; done; echo "bench: $1 not ready" >&2; exit 1; }

run auth AUTH_HTTP__PORT=18081 "AUTH_DATABASE__URL=$PG/bench_auth" AUTH_OAUTH__ISSUER=$ISSUER \
    BOOTSTRAP_ADMIN_USERNAME=bench BOOTSTRAP_ADMIN_PASSWORD=bench-password-1
ready http://127.0.0.1:18081
run introspection INTROSPECTION_HTTP__PORT=18082 "INTROSPECTION_DATABASE__URL=$PG/bench_introspection" \
    INTROSPECTION_AUTH__URL=http://127.0.0.1:18081 INTROSPECTION_AUTH__ISSUER=$ISSUER
ready http://127.0.0.1:18082
cat >"$DIR/gateway.toml" <<TOML
[[routes]]
prefix = "/bench"
upstream = "http://127.0.0.1:18090"
timeout = "10s"

# The same upstream without a token: what the proxying costs apart from the token's check.
[[routes]]
prefix = "/open"
upstream = "http://127.0.0.1:18090"
timeout = "10s"
public = true
TOML
run gateway GATEWAY_HTTP__PORT=18080 "GATEWAY_CONFIG_FILE=$DIR/gateway.toml" \
    GATEWAY_CACHE__KIND=redis "GATEWAY_CACHE__URL=$PLATFORM_TEST_REDIS_URL" GATEWAY_CACHE__PREFIX="bench$RANDOM:" \
    GATEWAY_INTROSPECTION__URL=http://127.0.0.1:18082/oauth2/introspect \
    GATEWAY_UPSTREAMS__AUTH=http://127.0.0.1:18081 GATEWAY_TOKENS__ISSUER=$ISSUER
ready http://127.0.0.1:18080

# A partner application and its tokens.
A=http://127.0.0.1:18081
ADMIN=$(curl -sf -X POST $A/oauth -u bench:bench-password-1 | jq -r .access_token)
APP=$(curl -sf -X POST $A/applications -H "Authorization: Bearer $ADMIN" -H 'Content-Type: application/json' \
    -d '{"name": "bench", "scopes": ["profile"]}')
ID=$(jq -r .data.client_id <<<"$APP") SECRET=$(jq -r .data.client_secret <<<"$APP")
token() { curl -sf -u "$ID:$SECRET" -d grant_type=client_credentials $A/oauth2/token | jq -r .access_token; }
TOKEN=$(token)

INTROSPECT_CLIENT_ID=gateway INTROSPECT_CLIENT_SECRET=gateway-dev-secret-change-me \
    INTROSPECT_URL=http://127.0.0.1:18082/oauth2/introspect deploy/bench/nginx.sh start "$DIR/nginx"

if [[ ${HOLD:-} == 1 ]]; then
    echo "bench: topology up until Ctrl-C; gateway http://127.0.0.1:18080/bench (token in $DIR/token), /open needs none"
    echo "$TOKEN" >"$DIR/token"
    sleep infinity
fi
if [[ ${PROFILE:-} == 1 ]]; then
    gateway=$(pgrep -f -n target/release/gateway)
    for what in healthz open; do
        echo "-- /$what (no proxying / no token)"
        CPU_ONLY=1 deploy/bench/profile.sh "$DIR" "$gateway" "http://127.0.0.1:18080/$what" "$TOKEN"
    done
    echo "-- /bench (proxied, the token checked)"
    deploy/bench/profile.sh "$DIR" "$gateway" http://127.0.0.1:18080/bench "$TOKEN"
    exit
fi

echo
echo "== 1. gateway vs nginx (one trivial upstream; every request carries a bearer token)"
TOKEN=$TOKEN D_URL=http://127.0.0.1:18080/bench deploy/bench/load.sh

echo
echo "== 1b. the same, interleaved: (b), (c), (d) in turn, ${ROUNDS:-5} rounds of 4 s; medians"
# One pass each is at the mercy of whatever else the machine does during it; rounds in turn
# give each target the same share of that.
for _ in $(seq 1 "${ROUNDS:-5}"); do
    for target in b:http://127.0.0.1:18091/bench c:http://127.0.0.1:18092/bench d:http://127.0.0.1:18080/bench; do
        rate=$(wrk -t2 -c"${CONNECTIONS:-64}" -d4s -H "Authorization: Bearer $TOKEN" "${target#*:}" |
            awk '/Requests\/sec/ { print $2 }')
        echo "${target%%:*} $rate"
    done
done | sort -k1,1 -k2,2n | awk '{ v[$1] = v[$1] " " $2; n[$1]++; all[$1, n[$1]] = $2 }
    END { for (t in n) { m = all[t, int((n[t] + 1) / 2)]; med[t] = m; printf "%s median %.0f req/s  (runs:%s)\n", t, m, v[t] }
          printf "median ratios: d/b %.2f  d/c %.2f\n", med["d"] / med["b"], med["d"] / med["c"] }'

echo
echo "== 2. introspection of active JWTs (PostgreSQL storage, 1,000 distinct tokens, caller authenticated)"
for _ in $(seq 1 1000); do token; done >"$DIR/tokens.txt"
BASIC=$(printf '%s' "$ID:$SECRET" | base64 -w0)
TOKENS_FILE=$DIR/tokens.txt INTROSPECT_BASIC=$BASIC wrk -t2 -c"${CONNECTIONS:-64}" -d"${DURATION:-10s}" --latency \
    -s deploy/bench/introspect.lua http://127.0.0.1:18082/oauth2/introspect |
    grep -E 'Requests/sec|  50%|  99%|not active|Non-2xx|Socket errors'
