"""How long this machine takes to wake an idle CPU: a loopback round trip between two
processes pinned to different CPUs, after the receiving CPU has idled for a while.

    .venv/bin/python bench/wakeup_latency.py [--rounds 200]

Why: the overhead target "added p50 <= 3 ms at 50 ms upstream delay" measures a gateway
whose CPU sleeps between bursts, so every hop pays the machine's wake-up time twice (the
request in, the upstream's answer back). On a machine that wakes an idle CPU in
microseconds this costs nothing; where the hypervisor takes a millisecond or more
(guest halt-polling off: ``haltpoll.guest_halt_poll_ns=0`` on the kernel command line),
even the bench's thinnest reference hop adds several milliseconds there. This prints the
round trip after each idle gap, so a reader can tell which kind of machine a latency
figure came from.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import time

GAPS_MS = (0.0, 1.0, 10.0, 50.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=200, help="round trips per idle gap")
    args = parser.parse_args()
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        raise SystemExit("needs two CPUs")
    ours, echo = socket.socketpair()
    child = os.fork()
    if child == 0:  # the echo side, on the second CPU
        ours.close()
        os.sched_setaffinity(0, {cpus[1]})
        while data := echo.recv(16):
            echo.sendall(data)
        os._exit(0)
    echo.close()
    os.sched_setaffinity(0, {cpus[0]})
    print(f"loopback round trip to a process on CPU {cpus[1]}, after it idled (ms)")
    print(f"{'idle gap':>9} {'p50':>7} {'p90':>7} {'max':>7}")
    try:
        for gap_ms in GAPS_MS:
            trips = []
            for _ in range(args.rounds):
                if gap_ms:
                    time.sleep(gap_ms / 1000)
                started = time.perf_counter()
                ours.sendall(b"x")
                ours.recv(16)
                trips.append((time.perf_counter() - started) * 1000)
            trips.sort()
            p90 = trips[int(0.9 * (len(trips) - 1))]
            print(f"{gap_ms:>7.0f}ms {statistics.median(trips):7.3f} {p90:7.3f} {trips[-1]:7.3f}")
    finally:
        ours.close()
        os.waitpid(child, 0)


if __name__ == "__main__":
    main()
