# Shared by bench/instructions.sh and bench/thread_cpu.sh: where things are, the mock
# upstream, the gateway under test, its readiness, wrk's settings.
BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$BENCH_DIR")"
SHARED="$ROOT/../shared/bench"
BENCH_PY="${POLYROUTE_BENCH_HOME:-$HOME/.cache/polyroute-bench}/.venv-bench/bin/python"

# start_mock OUT MOCK_PORT GW_PORT: exports the gateway's environment (the upstream URL,
# its port, a records database in OUT) and starts the shared mock upstream on CPU 0
# (its pid in MOCK, its log in OUT/mock.log).
start_mock() {
  export UPSTREAM_URL="http://127.0.0.1:$2/v1" GW_PORT="$3"
  export POLYROUTE_BENCH_DB="sqlite+aiosqlite:///$1/records.db"
  taskset -c 0 "$BENCH_PY" "$SHARED/mock_upstream.py" --port "$2" >"$1/mock.log" 2>&1 &
  MOCK=$!
}

# gateway_command TARGET PORT: sets GATEWAY (an array) to the command that serves TARGET,
# `reference` (the shared bench's thin aiohttp proxy) or a polyroute config file, and
# BUILD to what runs: `reference`, or polyroute `compiled` / `pure`. polyroute comes from
# the virtual environment POLYROUTE_VENV (default .venv, the editable and so pure-Python
# install; `python3 -m venv .venv-release && .venv-release/bin/pip install .` makes the
# compiled one). Its console script, not `python -m`, which would import the sources of
# the current directory first.
gateway_command() {
  if [ "$1" = reference ]; then
    GATEWAY=("$BENCH_PY" "$SHARED/null_gateway/null_proxy_aiohttp.py")
    BUILD=reference
  else
    local venv
    venv="$(cd "${POLYROUTE_VENV:-$ROOT/.venv}" && pwd)"
    GATEWAY=("$venv/bin/polyroute" serve -c "$1" --port "$2")
    BUILD=$(cd / && "$venv/bin/python" -c \
      'import polyroute.execution.executor as m; print("compiled" if m.__file__.endswith(".so") else "pure")')
  fi
}

# wait_ready PID LOG PORT TRIES PAUSE: until the gateway answers a POST; if its process
# ends first, print the tail of its log and exit.
wait_ready() {
  for _ in $(seq "$4"); do
    kill -0 "$1" 2>/dev/null || { tail -20 "$2"; exit 1; }
    curl -s -o /dev/null -m 5 -X POST "http://127.0.0.1:$3/v1/chat/completions" && return 0
    sleep "$5"
  done
}

# wrk_env MODE: the shared chat.lua's settings (`sse` streams) and the overhead configs'
# client key.
wrk_env() {
  BENCH_STREAM=$([ "$1" = sse ] && echo 1 || echo 0)
  export BENCH_STREAM BENCH_HEADERS="Authorization: Bearer sk-bench-overhead-key-0001"
}
