#!/usr/bin/env bash
# `make up` / `make down`: the production topology on this machine. Real PostgreSQL, Redis and
# RabbitMQ (deploy/servers.sh), a PostgreSQL database per service, and each service as its own
# process on its usual port, talking over RabbitMQ. Logs and pids under target/up/.
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=target/up
# name:database (empty: the service keeps no data)
# Consumers of auth's events first: on a first start their queues must exist before auth
# publishes the bootstrap administrator's user.registered.
SERVICES=(user-profile:user_profile blog:blog webhook:webhook notification-dispatch:notification_dispatch auth:auth introspection:introspection portal:portal gateway:)

# A service's port, from its defaults file.
port() {
    sed -n '/^\[http\]/,/^\[/s/^port = //p' "services/$1/config/default.toml"
}

start() {
    deploy/servers.sh start
    eval "$(deploy/servers.sh env)"
    # deploy/test.sh builds every binary once, with the features its tests unify, and says so:
    # building here with this command's own feature set would compile the dependencies again.
    local name
    for name in "${SERVICES[@]%%:*}"; do
        [[ ${UP_PREBUILT:-} == 1 && -x target/debug/$name ]] || { cargo build --locked $(printf -- '-p %s ' "${SERVICES[@]%%:*}"); break; }
    done
    mkdir -p "$DIR"
    local entry name db prefix
    for entry in "${SERVICES[@]}"; do
        name=${entry%%:*}
        db=${entry#*:}
        prefix=$(echo "$name" | tr 'a-z-' 'A-Z_')_
        if [[ -f $DIR/$name.pid ]] && kill -0 "$(cat "$DIR/$name.pid")" 2>/dev/null; then
            echo "up: $name already running (pid $(cat "$DIR/$name.pid"))"
            continue
        fi
        # Redis for the caches and limits that replicas share. Shared `PLATFORM_` names: a service
        # refuses a variable of its own prefix that names none of its settings, and not all have a cache.
        local env=(PLATFORM_BUS__KIND=rabbitmq "PLATFORM_BUS__URL=$PLATFORM_TEST_AMQP_URL"
            PLATFORM_CACHE__KIND=redis "PLATFORM_CACHE__URL=$PLATFORM_TEST_REDIS_URL")
        if [[ -n $db ]]; then
            psql -q -h 127.0.0.1 -p "${PLATFORM_PG_PORT:-15432}" -U postgres -tc \
                "SELECT 1 FROM pg_database WHERE datname = '$db'" | grep -q 1 ||
                psql -q -h 127.0.0.1 -p "${PLATFORM_PG_PORT:-15432}" -U postgres -c "CREATE DATABASE $db"
            env+=("${prefix}DATABASE__URL=${PLATFORM_TEST_POSTGRES_URL%/*}/$db")
        fi
        env "${env[@]}" setsid "target/debug/$name" >"$DIR/$name.log" 2>&1 &
        echo $! >"$DIR/$name.pid"
        echo "up: $name started (pid $!, log $DIR/$name.log)"
        # Each service waits for the one before it (introspection reads auth's keys at start).
        for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$(port "$name")/healthz" >/dev/null && break; sleep 0.1; done
    done
    sleep 1
    for entry in "${SERVICES[@]}"; do
        name=${entry%%:*}
        kill -0 "$(cat "$DIR/$name.pid")" 2>/dev/null || { echo "up: $name exited; see $DIR/$name.log" >&2; tail -5 "$DIR/$name.log" >&2; exit 1; }
    done
    echo "up: gateway on http://127.0.0.1:8080, developer portal on http://127.0.0.1:8080/portal ('make down' stops the services, 'make servers-stop' the servers)"
}

# Every service drains at once: one after another, their drain delays would add up.
stop() {
    local pidfile pid stopping=()
    for pidfile in "$DIR"/*.pid; do
        [[ -f $pidfile ]] || continue
        pid=$(cat "$pidfile")
        kill -TERM "$pid" 2>/dev/null && stopping+=("$pid:$(basename "$pidfile" .pid)")
        rm -f "$pidfile"
    done
    local entry
    for entry in "${stopping[@]}"; do
        for _ in $(seq 1 100); do kill -0 "${entry%%:*}" 2>/dev/null || break; sleep 0.2; done
        echo "up: stopped ${entry#*:}"
    done
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    *) echo "usage: deploy/up.sh start|stop" >&2; exit 2 ;;
esac
