#!/usr/bin/env bash
# Profiles one process under wrk load: where its CPU goes, per function (self and with callees),
# and a flame graph (CPU_ONLY=1: the CPU per request alone).
# Usage: deploy/bench/profile.sh <out dir> <pid> <url> <token>
set -euo pipefail
OUT=$1 PID=$2 URL=$3 TOKEN=$4
command -v perf >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq linux-perf >/dev/null
command -v inferno-flamegraph >/dev/null || cargo install --locked inferno
# CPU per request first, without the profiler's own cost: user and system time of the
# process (all its threads) over one wrk run, divided by the requests wrk counted.
ticks() { awk '{ print $14, $15 }' "/proc/$PID/stat"; }
read -r u0 s0 < <(ticks)
requests=$(wrk -t2 -c"${CONNECTIONS:-64}" -d8s -H "Authorization: Bearer $TOKEN" "$URL" | awk '/requests in/ { print $1 }')
read -r u1 s1 < <(ticks)
hz=$(getconf CLK_TCK)
awk -v u=$((u1 - u0)) -v s=$((s1 - s0)) -v n="$requests" -v hz="$hz" 'BEGIN {
    printf "CPU per request: %.1f us user + %.1f us system = %.1f us (%d requests in 8 s)\n",
        u / hz / n * 1e6, s / hz / n * 1e6, (u + s) / hz / n * 1e6, n }'
[[ ${CPU_ONLY:-} == 1 ]] && exit
# Stacks by DWARF unwinding: release builds keep line tables but no frame pointers.
wrk -t2 -c"${CONNECTIONS:-64}" -d14s -H "Authorization: Bearer $TOKEN" "$URL" >"$OUT/profile-wrk.txt" &
sleep 2
perf record -q -F 499 --call-graph dwarf,32768 -p "$PID" -o "$OUT/perf.data" -- sleep 10 2>/dev/null
wait
grep Requests/sec "$OUT/profile-wrk.txt"
echo "-- self time, top 40"
perf report -q -i "$OUT/perf.data" --no-children --sort symbol --percent-limit 0.7 2>/dev/null | grep -v '^$' | grep '%' | head -40
perf script -i "$OUT/perf.data" 2>/dev/null | inferno-collapse-perf >"$OUT/gateway.folded"
inferno-flamegraph --title "gateway under wrk (d)" <"$OUT/gateway.folded" >"$OUT/gateway.svg"
echo "-- flame graph: $OUT/gateway.svg (folded stacks: $OUT/gateway.folded)"
