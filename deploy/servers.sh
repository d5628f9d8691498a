#!/usr/bin/env bash
# Private test instances of PostgreSQL 15, Redis and RabbitMQ 3.10 on loopback ports.
#
# Usage: deploy/servers.sh install [NAME...]   apt-get install what is missing (no services started)
#        deploy/servers.sh start   [NAME...]   install if missing, start what is not running, wait until ready
#        deploy/servers.sh stop    [NAME...]   stop what this script started (by pid file), wait until gone
#        deploy/servers.sh restart NAME...     stop, then start
#        deploy/servers.sh status  [NAME...]   one line per server (exit 3 if any is not running)
#        deploy/servers.sh env                 print `export PLATFORM_TEST_*=...` lines
# NAME is postgres, redis or rabbitmq (default: all three).
#
# Environment:
#   PLATFORM_SERVERS_DIR   state directory (default <repo>/target/servers), one subdirectory per server
#   PLATFORM_PG_PORT       PostgreSQL port (default 15432)
#   PLATFORM_REDIS_PORT    Redis port (default 16379)
#   PLATFORM_AMQP_PORT     RabbitMQ AMQP port (default 16672); its Erlang distribution port is
#                          PLATFORM_AMQP_DIST_PORT (default AMQP port + 1) and its private epmd
#                          listens on PLATFORM_EPMD_PORT (default 14369)
#   PLATFORM_REDIS_TLS_PORT Redis's TLS port (default 16380)
#   PLATFORM_AMQPS_PORT    RabbitMQ's TLS port (default 16671)
#
# Each server also speaks TLS (PostgreSQL on its one port, Redis and RabbitMQ on their TLS
# ports) with a certificate for 127.0.0.1 and localhost signed by a test CA made once with
# openssl in <state>/tls; `env` names the CA (PLATFORM_TEST_TLS_CA) and the TLS URLs.
#
# Servers are started detached and outlive this script; they listen on 127.0.0.1 only.
# PostgreSQL: user postgres, no password (trust), database postgres. RabbitMQ: guest/guest, vhost /.
# Messages go to stderr; `status` and `env` write their answer to stdout.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STATE=$(realpath -m "${PLATFORM_SERVERS_DIR:-$ROOT/target/servers}")
PG_PORT=${PLATFORM_PG_PORT:-15432}
REDIS_PORT=${PLATFORM_REDIS_PORT:-16379}
AMQP_PORT=${PLATFORM_AMQP_PORT:-16672}
AMQP_DIST_PORT=${PLATFORM_AMQP_DIST_PORT:-$((AMQP_PORT + 1))}
EPMD_PORT=${PLATFORM_EPMD_PORT:-14369}
REDIS_TLS_PORT=${PLATFORM_REDIS_TLS_PORT:-16380}
AMQPS_PORT=${PLATFORM_AMQPS_PORT:-16671}

PG_DIR=$STATE/postgres
REDIS_DIR=$STATE/redis
RMQ_DIR=$STATE/rabbitmq
TLS_DIR=$STATE/tls
RMQ_NODE=platform$AMQP_PORT@localhost
RMQ_WAIT_SECS=60

ALL_NAMES=(rabbitmq postgres redis) # rabbitmq first: it is the slowest to start

say() { printf 'servers: %s\n' "$*" >&2; }
die() {
    say "error: $*"
    exit 1
}

# Print the last 20 lines of each given log file to stderr.
show_log() {
    local f
    for f in "$@"; do
        if [[ -s $f ]]; then
            say "last 20 lines of $f:"
            tail -n 20 "$f" | sed 's/^/servers: | /' >&2
        else
            say "(log $f is missing or empty)"
        fi
    done
}

now_ms() {
    local t=${EPOCHREALTIME//[.,]/}
    echo $((t / 1000))
}
# Elapsed time since $1 (from now_ms), as "1.23s".
since() {
    local ms=$(($(now_ms) - $1))
    printf '%d.%02ds' $((ms / 1000)) $((ms % 1000 / 10))
}

is_root() { [[ $(id -u) == 0 ]]; }

check_port() {
    local name=$1 port=$2
    if ! [[ $port =~ ^[0-9]+$ ]] || ((port < 1 || port > 65535)); then
        die "$name port '$port' is not a port number"
    fi
    # The RabbitMQ CLI tools listen on 35672-35682 themselves; a broker there dies with eaddrinuse.
    ((port < 35672 || port > 35682)) || die "$name port $port is in 35672-35682, which the RabbitMQ CLI tools use; pick another"
}
check_port PLATFORM_PG_PORT "$PG_PORT"
check_port PLATFORM_REDIS_PORT "$REDIS_PORT"
check_port PLATFORM_AMQP_PORT "$AMQP_PORT"
check_port PLATFORM_AMQP_DIST_PORT "$AMQP_DIST_PORT"
check_port PLATFORM_EPMD_PORT "$EPMD_PORT"
check_port PLATFORM_REDIS_TLS_PORT "$REDIS_TLS_PORT"
check_port PLATFORM_AMQPS_PORT "$AMQPS_PORT"

# ---------------------------------------------------------------- TLS

# The test CA and the one server certificate (127.0.0.1 and localhost, P-256) every server
# presents, made once: servers restarted keep their certificate, so a CA a test trusts stays
# valid. Made in a scratch directory, so an interrupted run never leaves half a set.
tls_files() {
    [[ -s $TLS_DIR/ca.pem && -s $TLS_DIR/server.pem && -s $TLS_DIR/server.key ]] && return 0
    command -v openssl >/dev/null || {
        say "error: openssl not found (run: $0 install)"
        return 1
    }
    local new=$TLS_DIR.new
    rm -rf "$new" && mkdir -p "$new" || return 1
    if ! (
        cd "$new" &&
            openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
                -subj "/CN=partner platform test CA" -keyout ca.key -out ca.pem &&
            openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
                -subj "/CN=localhost" -keyout server.key -out server.csr &&
            printf '%s\n' 'subjectAltName = DNS:localhost, IP:127.0.0.1' 'basicConstraints = CA:FALSE' \
                'keyUsage = digitalSignature' 'extendedKeyUsage = serverAuth' >server.ext &&
            openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 825 \
                -extfile server.ext -out server.pem
    ) >"$STATE/tls.log" 2>&1; then
        say "error: cannot make the test certificates with openssl"
        show_log "$STATE/tls.log"
        return 1
    fi
    chmod 600 "$new"/*.key
    rm -rf "$TLS_DIR" && mv "$new" "$TLS_DIR"
    say "made a test CA and a server certificate in $TLS_DIR"
}

# ---------------------------------------------------------------- processes

# True when pid $1 exists and is not a zombie.
pid_alive() {
    local s
    [[ ${1:-} =~ ^[0-9]+$ ]] || return 1
    # (`read`, not `$(<file)`: under `set -e` a failed `$(<file)` ends the script, even after `||`.)
    { IFS= read -r s <"/proc/$1/stat"; } 2>/dev/null || return 1
    s=${s##*) }
    s=${s%% *}
    [[ -n $s && $s != Z && $s != X ]]
}

# True when pid $1 is alive and its command line contains $2 (guards against reused pids).
pid_is() {
    local cmd
    pid_alive "$1" || return 1
    cmd=$(tr '\0' ' ' 2>/dev/null <"/proc/$1/cmdline") || return 1
    [[ $cmd == *"$2"* ]]
}

# First line of pid file $1, if it is a number.
read_pid() {
    local p=
    [[ -s $1 ]] || return 1
    { IFS= read -r p <"$1"; } 2>/dev/null || [[ -n $p ]] || return 1
    p=${p//[^0-9]/}
    [[ -n $p ]] || return 1
    echo "$p"
}

# Wait up to $2 seconds for pid $1 to be gone.
wait_gone() {
    local pid=$1 i
    for ((i = 0; i < $2 * 10; i++)); do
        pid_alive "$pid" || return 0
        sleep 0.1
    done
    ! pid_alive "$pid"
}

# True when something accepts TCP connections on 127.0.0.1:$1.
port_open() {
    # shellcheck disable=SC2016 # $1 is expanded by the inner bash
    timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' _ "$1" 2>/dev/null
}

# Serialise start/stop/install between concurrent invocations.
LOCKED=
take_lock() {
    [[ -z $LOCKED ]] || return 0
    mkdir -p "$STATE"
    exec 9>>"$STATE/.lock"
    flock -w 600 9 || die "could not lock $STATE/.lock within 600 s (another servers.sh is busy)"
    LOCKED=1
}

# ---------------------------------------------------------------- names

# Canonical server names from the arguments (default: all), in start order.
NAMES=()
parse_names() {
    local a n seen=" "
    NAMES=()
    (($#)) || set -- "${ALL_NAMES[@]}"
    for a in "$@"; do
        case $a in
        postgres | postgresql | pg) n=postgres ;;
        redis) n=redis ;;
        rabbitmq | rabbit | rmq | amqp) n=rabbitmq ;;
        *) die "unknown server '$a' (expected postgres, redis or rabbitmq)" ;;
        esac
        [[ $seen == *" $n "* ]] || seen+="$n "
    done
    for n in "${ALL_NAMES[@]}"; do
        [[ $seen != *" $n "* ]] || NAMES+=("$n")
    done
}

# ---------------------------------------------------------------- installing

pkg_installed() {
    command -v dpkg-query >/dev/null || return 1
    [[ $(dpkg-query -W -f='${Status}' "$1" 2>/dev/null) == "install ok installed" ]]
}

# Directory holding initdb, pg_ctl, postgres (PostgreSQL 15 preferred).
pg_bindir() {
    local d
    for d in "$(pg_config --bindir 2>/dev/null || true)" /usr/lib/postgresql/15/bin \
        $(printf '%s\n' /usr/lib/postgresql/*/bin | sort -rV); do
        [[ -n $d && -x $d/initdb && -x $d/pg_ctl && -x $d/postgres && -x $d/pg_isready ]] && {
            echo "$d"
            return 0
        }
    done
    return 1
}

# The package's own scripts, not the wrappers on the PATH (those switch user and directory).
rmq_bin() {
    local d=/usr/lib/rabbitmq/bin f
    if [[ ! -x $d/rabbitmq-server ]] && command -v dpkg >/dev/null; then
        f=$(dpkg -L rabbitmq-server 2>/dev/null | grep 'rabbitmq/bin/rabbitmq-server$' | head -n 1) || true
        [[ -z $f ]] || d=$(dirname "$f")
    fi
    [[ -x $d/rabbitmq-server && -x $d/rabbitmqctl ]] || return 1
    echo "$d"
}

epmd_bin() {
    command -v epmd 2>/dev/null && return 0
    local f
    for f in /usr/lib/erlang/erts-*/bin/epmd /usr/lib/erlang/bin/epmd; do
        [[ -x $f ]] && {
            echo "$f"
            return 0
        }
    done
    return 1
}

# Packages missing for the servers in NAMES (plus libpq-dev with postgres, for building).
missing_packages() {
    local n
    for n in "${NAMES[@]}"; do
        case $n in
        postgres)
            { pg_bindir >/dev/null && command -v psql >/dev/null; } || echo postgresql
            pkg_installed libpq-dev || echo libpq-dev
            ;;
        redis) { command -v redis-server && command -v redis-cli; } >/dev/null || echo redis-server ;;
        rabbitmq) { rmq_bin && epmd_bin; } >/dev/null || echo rabbitmq-server ;;
        esac
    done
    command -v openssl >/dev/null || echo openssl # the servers' TLS certificates
}

# Listening TCP ports of the distro's own services (to notice any the install started).
distro_listeners() {
    command -v ss >/dev/null || return 0
    ss -Hltn 2>/dev/null | awk '{print $4}' | grep -E ':(5432|6379|5672|25672|4369)$' | sort -u || true
}

install_missing() {
    local pkgs policy=/usr/sbin/policy-rc.d t0 before after p rc
    mapfile -t pkgs < <(missing_packages)
    ((${#pkgs[@]})) || return 0
    is_root || die "packages missing (${pkgs[*]}) and installing them needs root: sudo apt-get install -y ${pkgs[*]}"
    command -v apt-get >/dev/null || die "packages missing (${pkgs[*]}) and apt-get is not available"
    take_lock
    t0=$(now_ms)
    before=$(distro_listeners)
    say "installing ${pkgs[*]} (apt-get; the packages' own services are not started)"
    mkdir -p "$STATE"
    # A policy-rc.d answering 101 stops the packages' postinst from starting their services.
    # The machine's own policy-rc.d (if any) is put back afterwards.
    # (Not run as a condition, so that `set -e` holds inside the subshell.)
    set +e
    (
        set -e
        backup=
        if [[ -e $policy || -L $policy ]]; then
            backup=$(mktemp "$STATE/policy-rc.d.XXXXXX")
            cp -P "$policy" "$backup"
        fi
        # shellcheck disable=SC2317 # called by the EXIT trap
        restore() {
            if [[ -n $backup ]]; then
                cp -P "$backup" "$policy" && rm -f "$backup"
            else
                rm -f "$policy"
            fi
        }
        trap restore EXIT
        printf '#!/bin/sh\nexit 101\n' >"$policy.servers-sh"
        chmod 755 "$policy.servers-sh"
        mv -f "$policy.servers-sh" "$policy"
        export DEBIAN_FRONTEND=noninteractive
        apt_opts=(-q -o DPkg::Lock::Timeout=600 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
        apt-get "${apt_opts[@]}" update </dev/null
        apt-get "${apt_opts[@]}" install -y "${pkgs[@]}" </dev/null
    ) >"$STATE/install.log" 2>&1
    rc=$?
    set -e
    if ((rc != 0)); then
        say "error: apt-get install ${pkgs[*]} failed (exit $rc)"
        show_log "$STATE/install.log"
        exit 1
    fi
    # Anything the postinst scripts started anyway on the default ports is stopped (through the
    # distro's own init scripts, never by process name); our servers use other ports regardless.
    after=$(distro_listeners)
    for p in $after; do
        [[ $'\n'$before$'\n' != *$'\n'$p$'\n'* ]] || continue
        case $p in
        *:5432) service postgresql stop >/dev/null 2>&1 || true ;;
        *:6379) service redis-server stop >/dev/null 2>&1 || true ;;
        *:5672 | *:25672) service rabbitmq-server stop >/dev/null 2>&1 || true ;;
        *:4369) "$(epmd_bin)" -kill >/dev/null 2>&1 || true ;;
        esac
        say "note: the install had started a listener on $p; asked the distro's service to stop"
    done
    mapfile -t pkgs < <(missing_packages)
    ((${#pkgs[@]} == 0)) || {
        show_log "$STATE/install.log"
        die "still missing after apt-get install: ${pkgs[*]}"
    }
    say "installed in $(since "$t0") (log $STATE/install.log)"
}

# ---------------------------------------------------------------- PostgreSQL

# Run a PostgreSQL server command as the postgres user when we are root (it refuses root).
as_pg() {
    if is_root; then
        (cd "$PG_DIR" && runuser -u postgres -- "$@")
    else
        (cd "$PG_DIR" && "$@")
    fi
}

pg_pid() {
    local p
    p=$(read_pid "$PG_DIR/data/postmaster.pid") || return 1
    pid_is "$p" postgres || return 1
    echo "$p"
}

pg_start() {
    local t0 bin pid sock
    t0=$(now_ms)
    if pid=$(pg_pid); then
        say "postgres already running (pid $pid) on 127.0.0.1:$PG_PORT"
        return 0
    fi
    if port_open "$PG_PORT"; then
        say "error: postgres: port $PG_PORT is already in use by another process (see: ss -ltnp)"
        return 1
    fi
    bin=$(pg_bindir) || {
        say "error: postgres: PostgreSQL server binaries not found (run: $0 install)"
        return 1
    }
    mkdir -p "$PG_DIR" || {
        say "error: postgres: cannot create $PG_DIR"
        return 1
    }
    if is_root; then
        chown postgres: "$PG_DIR" || return 1
        if [[ -d $PG_DIR/data && $(stat -c %U "$PG_DIR/data") != postgres ]]; then
            chown -R postgres: "$PG_DIR/data" || return 1
        fi
        runuser -u postgres -- test -w "$PG_DIR" || {
            say "error: postgres: user postgres cannot write $PG_DIR (a parent directory is not accessible to it); set PLATFORM_SERVERS_DIR elsewhere"
            return 1
        }
    fi
    if [[ ! -f $PG_DIR/data/PG_VERSION ]]; then
        # initdb into a scratch directory, so an interrupted initdb never leaves a half-made cluster.
        rm -rf "$PG_DIR/data" "$PG_DIR/data.new"
        if ! as_pg "$bin/initdb" -D "$PG_DIR/data.new" -U postgres --auth=trust -E UTF8 --no-locale --no-sync \
            >"$PG_DIR/initdb.log" 2>&1 9>&-; then
            say "error: postgres: initdb failed"
            show_log "$PG_DIR/initdb.log"
            return 1
        fi
        if ! { printf '%s\n' '' '# deploy/servers.sh: throwaway test instance' \
            'fsync = off' 'synchronous_commit = off' 'full_page_writes = off' \
            'max_connections = 300' >>"$PG_DIR/data.new/postgresql.conf" &&
            mv "$PG_DIR/data.new" "$PG_DIR/data"; }; then
            say "error: postgres: cannot configure the new cluster in $PG_DIR/data.new"
            return 1
        fi
        say "postgres: initialised a fresh cluster in $PG_DIR/data in $(since "$t0")"
    fi
    # PostgreSQL reads its key only when its own user owns it, mode 0600.
    install -m 600 "$TLS_DIR/server.key" "$PG_DIR/server.key" &&
        install -m 644 "$TLS_DIR/server.pem" "$PG_DIR/server.pem" || return 1
    if is_root; then chown postgres: "$PG_DIR/server.key" "$PG_DIR/server.pem" || return 1; fi
    # Unix socket in the state directory, unless its path would be too long for a socket.
    sock=$PG_DIR
    ((${#sock} + 20 < 108)) || sock=
    if ! as_pg "$bin/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/postgres.log" -w -t 60 \
        -o "-p $PG_PORT -c listen_addresses=127.0.0.1 -c unix_socket_directories='$sock' -c ssl=on -c ssl_cert_file='$PG_DIR/server.pem' -c ssl_key_file='$PG_DIR/server.key'" start \
        >"$PG_DIR/pg_ctl.log" 2>&1 9>&-; then
        say "error: postgres: pg_ctl start failed (log $PG_DIR/postgres.log)"
        show_log "$PG_DIR/pg_ctl.log" "$PG_DIR/postgres.log"
        return 1
    fi
    if ! "$bin/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -t 30; then
        say "error: postgres: started but pg_isready does not answer on 127.0.0.1:$PG_PORT (log $PG_DIR/postgres.log)"
        show_log "$PG_DIR/postgres.log"
        return 1
    fi
    say "postgres ready on 127.0.0.1:$PG_PORT in $(since "$t0") (pid $(pg_pid || echo ?), log $PG_DIR/postgres.log)"
}

pg_stop() {
    local pid t0
    t0=$(now_ms)
    pid=$(pg_pid) || {
        say "postgres not running"
        return 0
    }
    kill -INT "$pid" 2>/dev/null || true # SIGINT = pg_ctl's "fast" shutdown
    if ! wait_gone "$pid" 60; then
        say "error: postgres (pid $pid) did not stop within 60 s (log $PG_DIR/postgres.log)"
        show_log "$PG_DIR/postgres.log"
        return 1
    fi
    say "postgres stopped in $(since "$t0")"
}

pg_status() {
    local pid
    if pid=$(pg_pid); then
        if port_open "$PG_PORT"; then
            echo "postgres  running  pid $pid  127.0.0.1:$PG_PORT  $PG_DIR"
            return 0
        fi
        echo "postgres  not answering on 127.0.0.1:$PG_PORT  (pid $pid alive; log $PG_DIR/postgres.log)"
        return 1
    fi
    echo "postgres  stopped"
    return 1
}

# ---------------------------------------------------------------- Redis

redis_pid() {
    local p
    p=$(read_pid "$REDIS_DIR/redis.pid") || return 1
    pid_is "$p" redis-server || return 1
    echo "$p"
}

redis_ping() {
    [[ $(timeout 5 redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null) == PONG ]]
}

redis_start() {
    local t0 pid i
    t0=$(now_ms)
    if pid=$(redis_pid); then
        say "redis already running (pid $pid) on 127.0.0.1:$REDIS_PORT"
        port_open "$REDIS_TLS_PORT" || {
            say "error: redis: it has no TLS port $REDIS_TLS_PORT (an older start): run $0 restart redis"
            return 1
        }
        return 0
    fi
    if port_open "$REDIS_PORT"; then
        say "error: redis: port $REDIS_PORT is already in use by another process (see: ss -ltnp)"
        return 1
    fi
    command -v redis-server >/dev/null || {
        say "error: redis: redis-server not found (run: $0 install)"
        return 1
    }
    mkdir -p "$REDIS_DIR" || {
        say "error: redis: cannot create $REDIS_DIR"
        return 1
    }
    if port_open "$REDIS_TLS_PORT"; then
        say "error: redis: TLS port $REDIS_TLS_PORT is already in use by another process (see: ss -ltnp)"
        return 1
    fi
    rm -f "$REDIS_DIR/redis.pid"
    # No persistence: no RDB snapshots, no AOF. Clients are not asked for certificates.
    if ! redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no \
        --tls-port "$REDIS_TLS_PORT" --tls-cert-file "$TLS_DIR/server.pem" --tls-key-file "$TLS_DIR/server.key" \
        --tls-ca-cert-file "$TLS_DIR/ca.pem" --tls-auth-clients no \
        --dir "$REDIS_DIR" --daemonize yes --pidfile "$REDIS_DIR/redis.pid" \
        --logfile "$REDIS_DIR/redis.log" </dev/null >"$REDIS_DIR/launch.log" 2>&1 9>&-; then
        say "error: redis: redis-server failed to start (log $REDIS_DIR/redis.log)"
        show_log "$REDIS_DIR/launch.log" "$REDIS_DIR/redis.log"
        return 1
    fi
    for ((i = 0; i < 300; i++)); do
        redis_ping && break
        sleep 0.1
    done
    if ! redis_ping; then
        say "error: redis: no PONG from 127.0.0.1:$REDIS_PORT within 30 s (log $REDIS_DIR/redis.log)"
        show_log "$REDIS_DIR/redis.log"
        return 1
    fi
    for ((i = 0; i < 50; i++)); do # the daemon writes its pid file just after it listens
        redis_pid >/dev/null && break
        sleep 0.1
    done
    say "redis ready on 127.0.0.1:$REDIS_PORT in $(since "$t0") (pid $(redis_pid || echo ?), log $REDIS_DIR/redis.log)"
}

redis_stop() {
    local pid t0
    t0=$(now_ms)
    pid=$(redis_pid) || {
        say "redis not running"
        return 0
    }
    kill -TERM "$pid" 2>/dev/null || true # no save points configured: exits without writing
    if ! wait_gone "$pid" 30; then
        say "error: redis (pid $pid) did not stop within 30 s (log $REDIS_DIR/redis.log)"
        show_log "$REDIS_DIR/redis.log"
        return 1
    fi
    rm -f "$REDIS_DIR/redis.pid"
    say "redis stopped in $(since "$t0")"
}

redis_status() {
    local pid
    if pid=$(redis_pid); then
        if redis_ping; then
            echo "redis     running  pid $pid  127.0.0.1:$REDIS_PORT  $REDIS_DIR"
            return 0
        fi
        echo "redis     not answering on 127.0.0.1:$REDIS_PORT  (pid $pid alive; log $REDIS_DIR/redis.log)"
        return 1
    fi
    echo "redis     stopped"
    return 1
}

# ---------------------------------------------------------------- RabbitMQ

# Environment shared by the broker and its CLI (same HOME, hence the same Erlang cookie).
RMQ_ENV=(
    HOME="$RMQ_DIR/home"
    RABBITMQ_NODENAME="$RMQ_NODE"
    RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
    RABBITMQ_NODE_PORT="$AMQP_PORT"
    RABBITMQ_DIST_PORT="$AMQP_DIST_PORT"
    ERL_EPMD_PORT="$EPMD_PORT"
    ERL_EPMD_ADDRESS=127.0.0.1
    RABBITMQ_MNESIA_BASE="$RMQ_DIR/mnesia"
    RABBITMQ_LOG_BASE="$RMQ_DIR/log"
    RABBITMQ_PID_FILE="$RMQ_DIR/rabbitmq.pid"
    RABBITMQ_CONFIG_FILE="$RMQ_DIR/rabbitmq.conf"
    RABBITMQ_ADVANCED_CONFIG_FILE="$RMQ_DIR/advanced.config"
    RABBITMQ_ENABLED_PLUGINS_FILE="$RMQ_DIR/enabled_plugins"
    RABBITMQ_CONF_ENV_FILE="$RMQ_DIR/rabbitmq-env.conf"
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
    ERL_CRASH_DUMP="$RMQ_DIR/erl_crash.dump"
)
RMQ_LOGS=("$RMQ_DIR/startup.log" "$RMQ_DIR/log/$RMQ_NODE.log")

rmqctl() {
    local d
    d=$(rmq_bin) || return 1
    (cd "$RMQ_DIR" && env "${RMQ_ENV[@]}" "$d/rabbitmqctl" "$@")
}

rmq_pid() {
    local p
    p=$(read_pid "$RMQ_DIR/rabbitmq.pid") || return 1
    pid_is "$p" beam || return 1
    echo "$p"
}

# Pid of the setsid'd launcher script (leader of the broker's process group), while alive.
rmq_launcher_pid() {
    local p
    p=$(read_pid "$RMQ_DIR/launcher.pid") || return 1
    pid_is "$p" rabbitmq || return 1
    echo "$p"
}

rmq_epmd_kill() {
    local e
    e=$(epmd_bin) || return 0
    # Refuses (harmlessly) while other nodes are still registered with it.
    ERL_EPMD_ADDRESS=127.0.0.1 "$e" -port "$EPMD_PORT" -kill >/dev/null 2>&1 || true
}

# Kill the broker (pid file) and its launcher's process group; wait until both are gone.
rmq_kill() {
    local pid lpid ok=0
    if pid=$(rmq_pid); then
        kill -TERM "$pid" 2>/dev/null || true
        wait_gone "$pid" 60 || {
            say "rabbitmq (pid $pid) still running 60 s after SIGTERM; sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            wait_gone "$pid" 10 || ok=1
        }
    fi
    if lpid=$(rmq_launcher_pid); then
        kill -TERM -- "-$lpid" 2>/dev/null || true
        wait_gone "$lpid" 10 || {
            kill -KILL -- "-$lpid" 2>/dev/null || true
            wait_gone "$lpid" 5 || ok=1
        }
    fi
    rmq_epmd_kill
    rm -f "$RMQ_DIR/rabbitmq.pid" "$RMQ_DIR/launcher.pid"
    return $ok
}

rmq_start() {
    local t0 pid lpid bin i
    t0=$(now_ms)
    if pid=$(rmq_pid) && port_open "$AMQP_PORT"; then
        say "rabbitmq already running (pid $pid) on 127.0.0.1:$AMQP_PORT"
        port_open "$AMQPS_PORT" || {
            say "error: rabbitmq: it has no TLS port $AMQPS_PORT (an older start): run $0 restart rabbitmq"
            return 1
        }
        return 0
    fi
    # Leftovers of an interrupted start (a broker that never answered) are ours to clear.
    if pid=$(rmq_pid) || rmq_launcher_pid >/dev/null; then
        say "rabbitmq: clearing a broker that is not answering (pid ${pid:-?})"
        rmq_kill || {
            say "error: rabbitmq: could not stop the stale broker"
            return 1
        }
    fi
    for i in "$AMQP_PORT" "$AMQP_DIST_PORT" "$AMQPS_PORT"; do
        if port_open "$i"; then
            say "error: rabbitmq: port $i is already in use by another process (see: ss -ltnp)"
            return 1
        fi
    done
    bin=$(rmq_bin) || {
        say "error: rabbitmq: rabbitmq-server scripts not found (run: $0 install)"
        return 1
    }
    # A config of a TLS listener only (clients not asked for certificates), no plugins, and no
    # rabbitmq-env.conf from /etc.
    if ! { mkdir -p "$RMQ_DIR/home" "$RMQ_DIR/mnesia" "$RMQ_DIR/log" &&
        printf '%s\n' "listeners.ssl.default = 127.0.0.1:$AMQPS_PORT" \
            "ssl_options.cacertfile = $TLS_DIR/ca.pem" "ssl_options.certfile = $TLS_DIR/server.pem" \
            "ssl_options.keyfile = $TLS_DIR/server.key" "ssl_options.verify = verify_none" \
            "ssl_options.fail_if_no_peer_cert = false" >"$RMQ_DIR/rabbitmq.conf" &&
        : >"$RMQ_DIR/rabbitmq-env.conf" &&
        echo '[].' >"$RMQ_DIR/enabled_plugins"; }; then
        say "error: rabbitmq: cannot prepare $RMQ_DIR"
        return 1
    fi
    rm -f "$RMQ_DIR/rabbitmq.pid"
    printf '=== %s start\n' "$(date -Is)" >>"$RMQ_DIR/startup.log"
    # Detached in its own session; it must not hold our stdout/stderr or the lock open.
    (
        cd "$RMQ_DIR"
        exec setsid env "${RMQ_ENV[@]}" "$bin/rabbitmq-server" </dev/null >>"$RMQ_DIR/startup.log" 2>&1 9>&-
    ) &
    lpid=$!
    echo "$lpid" >"$RMQ_DIR/launcher.pid"
    # `rabbitmqctl wait` needs the pid file, which the broker writes early in its boot.
    for ((i = 0; i < RMQ_WAIT_SECS * 10; i++)); do
        [[ -s $RMQ_DIR/rabbitmq.pid ]] && break
        pid_alive "$lpid" || break
        sleep 0.1
    done
    if [[ ! -s $RMQ_DIR/rabbitmq.pid ]]; then
        say "error: rabbitmq: the broker did not come up (no pid file after $(since "$t0")) (logs ${RMQ_LOGS[*]})"
        show_log "${RMQ_LOGS[@]}"
        rmq_kill || true
        return 1
    fi
    if ! rmqctl -q wait --timeout "$RMQ_WAIT_SECS" "$RMQ_DIR/rabbitmq.pid" >>"$RMQ_DIR/startup.log" 2>&1 9>&-; then
        say "error: rabbitmq: not ready after $(since "$t0") (rabbitmqctl wait failed; logs ${RMQ_LOGS[*]})"
        show_log "${RMQ_LOGS[@]}"
        rmq_kill || true
        return 1
    fi
    for ((i = 0; i < 100; i++)); do
        port_open "$AMQP_PORT" && port_open "$AMQPS_PORT" && break
        sleep 0.1
    done
    if ! port_open "$AMQP_PORT" || ! port_open "$AMQPS_PORT"; then
        say "error: rabbitmq: booted but nothing answers on 127.0.0.1:$AMQP_PORT or :$AMQPS_PORT (logs ${RMQ_LOGS[*]})"
        show_log "${RMQ_LOGS[@]}"
        rmq_kill || true
        return 1
    fi
    # Each test and bench run declares queues under an exchange of its own (`name_<32 hex>`);
    # left behind, thousands of them kept the broker busy between runs (7 % of a core idle,
    # noise in every benchmark). Unused for ten minutes, they go; the services' own queues
    # (`make up`) match no such name.
    if ! rmqctl -q set_policy test-queues-expire '_[0-9a-f]{32}\.' '{"expires":600000}' --apply-to queues \
        >>"$RMQ_DIR/startup.log" 2>&1 9>&-; then
        say "warning: rabbitmq: the expiry policy for test queues was not set (logs ${RMQ_LOGS[*]})"
    fi
    say "rabbitmq ready on 127.0.0.1:$AMQP_PORT in $(since "$t0") (pid $(rmq_pid || echo ?), log ${RMQ_LOGS[1]})"
}

rmq_stop() {
    local t0
    t0=$(now_ms)
    if ! rmq_pid >/dev/null && ! rmq_launcher_pid >/dev/null; then
        rmq_epmd_kill
        say "rabbitmq not running"
        return 0
    fi
    if ! rmq_kill; then
        say "error: rabbitmq did not stop (logs ${RMQ_LOGS[*]})"
        show_log "${RMQ_LOGS[@]}"
        return 1
    fi
    say "rabbitmq stopped in $(since "$t0")"
}

rmq_status() {
    local pid
    if pid=$(rmq_pid); then
        if port_open "$AMQP_PORT"; then
            echo "rabbitmq  running  pid $pid  127.0.0.1:$AMQP_PORT  $RMQ_DIR"
            return 0
        fi
        echo "rabbitmq  not answering on 127.0.0.1:$AMQP_PORT  (pid $pid alive; log ${RMQ_LOGS[1]})"
        return 1
    fi
    if pid=$(rmq_launcher_pid); then
        echo "rabbitmq  starting  launcher pid $pid  (log ${RMQ_LOGS[0]})"
        return 1
    fi
    echo "rabbitmq  stopped"
    return 1
}

# ---------------------------------------------------------------- commands

cmd_install() {
    parse_names "$@"
    install_missing
    say "all packages present (${NAMES[*]})"
}

cmd_start() {
    local n rc=0 rmq_job=
    parse_names "$@"
    install_missing
    take_lock
    tls_files || die "no certificates for the servers' TLS ports"
    for n in "${NAMES[@]}"; do
        case $n in
        rabbitmq)
            rmq_start &
            rmq_job=$!
            ;;
        postgres) pg_start || rc=1 ;;
        redis) redis_start || rc=1 ;;
        esac
    done
    if [[ -n $rmq_job ]] && ! wait "$rmq_job"; then
        say "error: rabbitmq did not start (logs ${RMQ_LOGS[*]})"
        rc=1
    fi
    ((rc == 0)) || die "some servers failed to start (see above)"
}

cmd_stop() {
    local n rc=0
    parse_names "$@"
    take_lock
    for n in "${NAMES[@]}"; do
        case $n in
        rabbitmq) rmq_stop || rc=1 ;;
        postgres) pg_stop || rc=1 ;;
        redis) redis_stop || rc=1 ;;
        esac
    done
    ((rc == 0)) || die "some servers failed to stop (see above)"
}

cmd_status() {
    local n rc=0
    parse_names "$@"
    for n in postgres redis rabbitmq; do
        [[ " ${NAMES[*]} " == *" $n "* ]] || continue
        case $n in
        rabbitmq) rmq_status || rc=3 ;;
        postgres) pg_status || rc=3 ;;
        redis) redis_status || rc=3 ;;
        esac
    done
    return $rc
}

cmd_env() {
    echo "export PLATFORM_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:$PG_PORT/postgres"
    echo "export PLATFORM_TEST_REDIS_URL=redis://127.0.0.1:$REDIS_PORT"
    echo "export PLATFORM_TEST_AMQP_URL=amqp://guest:guest@127.0.0.1:$AMQP_PORT/%2f"
    echo "export PLATFORM_TEST_TLS_CA=$TLS_DIR/ca.pem"
    echo "export PLATFORM_TEST_POSTGRES_TLS_URL='postgres://postgres@127.0.0.1:$PG_PORT/postgres?sslmode=verify-full'"
    echo "export PLATFORM_TEST_REDIS_TLS_URL=rediss://127.0.0.1:$REDIS_TLS_PORT"
    echo "export PLATFORM_TEST_AMQP_TLS_URL=amqps://guest:guest@127.0.0.1:$AMQPS_PORT/%2f"
}

usage() {
    sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}" >&2
}

main() {
    local cmd=${1:-}
    (($#)) && shift
    case $cmd in
    install) cmd_install "$@" ;;
    start) cmd_start "$@" ;;
    stop) cmd_stop "$@" ;;
    restart)
        (($#)) || die "restart needs a server name (postgres, redis or rabbitmq)"
        cmd_stop "$@"
        cmd_start "$@"
        ;;
    status) cmd_status "$@" ;;
    env)
        (($# == 0)) || die "env takes no arguments"
        cmd_env
        ;;
    -h | --help | help) usage ;;
    *)
        usage
        die "unknown command '${cmd}'"
        ;;
    esac
}

main "$@"
