#!/usr/bin/env bash
# CPU per request of each thread of the gateway (user and system time, from /proc), under
# wrk load: where a configuration's cost goes, kernel time included (callgrind counts only
# user-space instructions, so a change that saves system calls or disk writes shows here
# and not in bench/instructions.sh).
#
#   bench/thread_cpu.sh reference|CONFIG [json|sse] [seconds]
#     e.g. bench/thread_cpu.sh bench/overhead-full.yaml json
#
# The mock upstream and wrk (32 connections, the bench's chat.lua and the overhead
# configs' client key) run on CPU 0, the gateway on CPU 1; 5 s of warm-up, then the
# threads' CPU time is read before and after `seconds` (default 15) of load. Wall-clock
# figures: expect +-5 % between runs on a quiet machine; alternate the variants compared.
# Needs wrk and ../shared/bench/setup.sh once.
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
TARGET="${1:?usage: bench/thread_cpu.sh reference|CONFIG [json|sse] [seconds]}"
MODE="${2:-json}"
SECONDS_ON="${3:-15}"
OUT="$(mktemp -d)"
MOCK_PORT=18400 GW_PORT=18401
gateway_command "$TARGET" "$GW_PORT"
start_mock "$OUT" "$MOCK_PORT" "$GW_PORT"
taskset -c 1 "${GATEWAY[@]}" >"$OUT/gateway.log" 2>&1 &
GATEWAY_PID=$!
trap 'kill $GATEWAY_PID $MOCK 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$OUT"' EXIT
wait_ready "$GATEWAY_PID" "$OUT/gateway.log" "$GW_PORT" 100 0.2
wrk_env "$MODE"
URL="http://127.0.0.1:$GW_PORT"
snapshot() {  # thread id, user ticks, system ticks
  for task in /proc/"$GATEWAY_PID"/task/*; do
    echo "$(basename "$task") $(awk '{print $14, $15}' "$task/stat")"
  done
}
taskset -c 0 wrk -t1 -c32 -d5s --timeout 30s -s "$SHARED/chat.lua" "$URL" >/dev/null
snapshot >"$OUT/before"
BENCH_OUT="$OUT/wrk.json" taskset -c 0 wrk -t1 -c32 -d"${SECONDS_ON}s" --timeout 30s \
  -s "$SHARED/chat.lua" "$URL" >/dev/null
snapshot >"$OUT/after"
python3 - "$OUT" "$TARGET ($BUILD)" "$MODE" "$(getconf CLK_TCK)" <<'PY'
import json, sys
out, target, mode, tick = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
def load(name):
    return {t: (int(u), int(s)) for t, u, s in (line.split() for line in open(f"{out}/{name}"))}
before, after = load("before"), load("after")
requests = json.load(open(f"{out}/wrk.json"))["requests"]
per = 1e6 / tick / requests  # microseconds per tick, per request
print(f"{target} {mode}: {requests} requests")
total_user = total_system = 0
for index, (thread, (user, system)) in enumerate(after.items()):
    user0, system0 = before.get(thread, (0, 0))
    user, system = user - user0, system - system0
    total_user, total_system = total_user + user, total_system + system
    if user or system:
        name = "main" if index == 0 else f"thread {index}"
        print(f"  {name:9} user {user * per:6.1f}  system {system * per:6.1f} us/request")
print(f"  {'all':9} user {total_user * per:6.1f}  system {total_system * per:6.1f}  "
      f"total {(total_user + total_system) * per:6.1f} us/request")
PY
