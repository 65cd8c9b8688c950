#!/usr/bin/env bash
# Instructions per request under callgrind: a noise-free figure for hot-path work.
#
#   bench/instructions.sh reference|CONFIG [json|sse] [seconds]
#     e.g. bench/instructions.sh reference json; bench/instructions.sh bench/overhead-full.yaml sse
#
# Starts the shared bench's mock upstream (CPU 0) and the gateway under
# `valgrind --tool=callgrind --instr-atstart=no` (CPU 1): the bench's thin reference proxy,
# or `polyroute serve -c CONFIG`. wrk (32 connections, the bench's chat.lua, the overhead
# configs' client key) warms it up for 10 s, then instrumentation is switched on for
# `seconds` (default 20) of load, and the count is divided by the requests wrk completed.
# The same binary and inputs give the same count (+-1 %) whatever else the machine does;
# wall-clock figures here move +-20 %. Valgrind runs the gateway ~40x slower, so work done
# once per batch or per second weighs ~40x more per request than under real load.
# Needs valgrind, wrk, ../shared/bench/setup.sh once. Files: $TMPDIR/polyroute-callgrind.
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
TARGET="${1:?usage: bench/instructions.sh reference|CONFIG [json|sse] [seconds]}"
MODE="${2:-json}"
SECONDS_ON="${3:-20}"
OUT="${TMPDIR:-/tmp}/polyroute-callgrind"
MOCK_PORT=18200 GW_PORT=18201
mkdir -p "$OUT"
rm -f "$OUT"/callgrind.out* "$OUT/records.db"*
gateway_command "$TARGET" "$GW_PORT"
start_mock "$OUT" "$MOCK_PORT" "$GW_PORT"
taskset -c 1 valgrind --tool=callgrind --instr-atstart=no \
  --callgrind-out-file="$OUT/callgrind.out" "${GATEWAY[@]}" >"$OUT/gateway.log" 2>&1 &
GATEWAY_PID=$!
trap 'kill $GATEWAY_PID $MOCK 2>/dev/null || true; wait 2>/dev/null || true' EXIT
wait_ready "$GATEWAY_PID" "$OUT/gateway.log" "$GW_PORT" 600 0.5 # valgrind: a slow start
wrk_env "$MODE"
URL="http://127.0.0.1:$GW_PORT"
taskset -c 0 wrk -t1 -c32 -d10s --timeout 30s -s "$SHARED/chat.lua" "$URL" >/dev/null
callgrind_control -i on "$GATEWAY_PID" >/dev/null 2>&1
BENCH_OUT="$OUT/wrk.json" taskset -c 0 wrk -t1 -c32 -d"${SECONDS_ON}s" --timeout 30s \
  -s "$SHARED/chat.lua" "$URL" >/dev/null
callgrind_control -i off "$GATEWAY_PID" >/dev/null 2>&1
callgrind_control -d "$GATEWAY_PID" >/dev/null 2>&1
python3 - "$OUT" "$TARGET ($BUILD)" "$MODE" <<'PY'
import glob, json, sys
out, target, mode = sys.argv[1:]
result = json.load(open(f"{out}/wrk.json"))
count = 0
for path in glob.glob(f"{out}/callgrind.out*"):
    for line in open(path):
        if line.startswith(("summary:", "totals:")):
            count = max(count, int(line.split()[1]))
requests = result["requests"]
errors = sum(result["errors"].values())
print(f"{target} {mode}: {requests} requests ({errors} errors), "
      f"{count / requests / 1e6:.3f} M instructions per request")
PY
