"""Memory soak: the full pipeline under steady load for a while; is resident memory flat?

Starts the shared bench's mock upstream and `polyroute serve -c bench/overhead-full.yaml`,
drives them with wrk (the shared bench's chat.lua, one client key), samples the gateway's
resident memory every `--every` seconds and prints the series, then the growth from the end
of warm-up to the end (target: within 10 %).

    .venv/bin/python bench/soak.py --minutes 10      # needs ../shared/bench/setup.sh once
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO.parent / "shared" / "bench"
BENCH_PY = Path.home() / ".cache" / "polyroute-bench" / ".venv-bench" / "bin" / "python"
KEY = "sk-bench-overhead-key-0001"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def wait_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise RuntimeError(f"nothing listens on {port}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument(
        "--polyroute",
        default=str(REPO / ".venv" / "bin" / "polyroute"),
        help="the console script to serve with (.venv-release/bin/polyroute: the compiled build)",
    )
    parser.add_argument("--every", type=float, default=15)
    parser.add_argument("--warmup", type=float, default=60)
    parser.add_argument("--connections", type=int, default=8)
    args = parser.parse_args()
    if not BENCH_PY.exists() or shutil.which("wrk") is None:
        sys.exit("run ../shared/bench/setup.sh first (wrk and the bench venv)")
    mock_port, gw_port = free_port(), free_port()
    env = {**os.environ, "UPSTREAM_URL": f"http://127.0.0.1:{mock_port}/v1"}
    env.setdefault("POLYROUTE_BENCH_DB", "sqlite+aiosqlite:////tmp/polyroute-soak.db")
    mock = subprocess.Popen(
        [str(BENCH_PY), str(BENCH / "mock_upstream.py"), "--port", str(mock_port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    polyroute = args.polyroute
    gateway = subprocess.Popen(
        [str(polyroute), "serve", "-c", str(REPO / "bench" / "overhead-full.yaml"),
         "--port", str(gw_port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    load = None
    try:
        wait_port(mock_port)
        wait_port(gw_port)
        seconds = int(args.minutes * 60)
        load = subprocess.Popen(
            ["wrk", "-t1", f"-c{args.connections}", f"-d{seconds}s", "-s",
             str(BENCH / "chat.lua"), f"http://127.0.0.1:{gw_port}"],
            env={**os.environ, "BENCH_HEADERS": f"Authorization: Bearer {KEY}"},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )  # fmt: skip
        started = time.monotonic()
        samples: list[tuple[float, float]] = []
        print("  t (s)  RSS (MiB)", flush=True)
        while load.poll() is None:
            elapsed = time.monotonic() - started
            samples.append((elapsed, rss_mib(gateway.pid)))
            print(f"{elapsed:7.0f}  {samples[-1][1]:9.1f}", flush=True)
            time.sleep(args.every)
        summary = [line for line in (load.stdout.read() if load.stdout else "").splitlines()
                   if "Requests/sec" in line or "requests in" in line]  # fmt: skip
        print("\n".join(summary))
        after = [rss for t, rss in samples if t >= args.warmup]
        if len(after) >= 2:
            growth = (after[-1] - after[0]) / after[0]
            print(
                f"RSS after warm-up {after[0]:.1f} MiB, at the end {after[-1]:.1f} MiB, "
                f"max {max(after):.1f} MiB: growth {growth:+.1%} (target within 10 %)"
            )
    finally:
        for process in (load, gateway, mock):
            if process is not None and process.poll() is None:
                process.terminate()
                process.wait(10)


if __name__ == "__main__":
    main()
