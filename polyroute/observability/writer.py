"""BackgroundWriter: a bounded queue written in batches off the request path.

`put` is a deque append (no lock, no syscall). The queue is drained every `interval`
seconds, or as soon as `wake_at` items wait: the waiting items are rendered in batches
(serialised, redacted) and each batch written with one call. A full queue drops new items
and counts them (`dropped`), so a sink that stalls costs lines, never requests.

Two ways to drain: a daemon thread (`start`), for sinks that may block for long (stderr:
a pipe nobody reads), or a task on the event loop (`start_task`), for a regular file,
whose buffered writes return in microseconds: no second thread competing for the GIL
(measured: ~8 us per line less than the thread under full load, bench/observers_cost.py).
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from contextlib import suppress
from typing import Any

MAX_BATCH = 512  # items rendered and written at once (bigger joins cost more per item)


class BackgroundWriter:
    """Items in, batches out on a thread of its own."""

    def __init__(
        self,
        name: str,
        render: Callable[[list[Any]], bytes],
        write: Callable[[bytes], None],
        *,
        queue_size: int,
        interval: float,
        wake_at: int = 1024,
    ) -> None:
        self.name = name
        self._render = render
        self._write = write
        self._max = queue_size
        self._interval = interval
        self._wake_at = min(wake_at, queue_size)
        self._queue: deque[Any] = deque()
        self._wake = threading.Event()
        self._worker: threading.Thread | None = None  # not `_thread`: compiled, a C keyword
        self._task: asyncio.Task[None] | None = None
        self._loop_wake: asyncio.Event | None = None
        self._stopping = False
        self._closed = False
        self._busy = False
        self._reported = False
        self.written = 0
        self.dropped = 0
        self.failed = 0

    def put(self, item: Any) -> bool:
        """Queue `item`; False (counted in `dropped`) when the queue is full or closed."""
        queue = self._queue
        if len(queue) >= self._max or self._closed:
            self.dropped += 1
            return False
        queue.append(item)
        if len(queue) == self._wake_at:
            if self._loop_wake is not None:
                self._loop_wake.set()
            else:
                self._wake.set()
        return True

    @property
    def queued(self) -> int:
        return len(self._queue)

    def start(self) -> None:
        if self._worker is None:
            self._worker = threading.Thread(target=self._run, name=self.name, daemon=True)
            self._worker.start()

    def start_task(self) -> None:
        """Drain on the running event loop instead of a thread."""
        if self._task is None and self._worker is None:
            self._loop_wake = asyncio.Event()
            self._task = asyncio.get_running_loop().create_task(self._run_task(), name=self.name)

    def move_to_loop(self) -> None:
        """Drain on the running event loop from now on: the thread (if any) writes what it
        holds and stops, then a task takes over."""
        thread = self._worker
        if thread is not None:
            self._stopping = True
            self._wake.set()
            thread.join(5.0)
            if thread.is_alive():  # stuck on a write: keep it, this sink can block
                self._stopping = False
                return
            self._worker = None
            self._stopping = False
        self.start_task()

    async def _run_task(self) -> None:
        wake = self._loop_wake
        assert wake is not None
        while not self._stopping:
            with suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), self._interval)
            wake.clear()
            self._drain()

    async def aclose(self) -> None:
        """Stop a task-drained writer and write what is queued (a thread: see close)."""
        task, self._task = self._task, None
        if task is None:
            await asyncio.to_thread(self.close)
            return
        self._closed = self._stopping = True
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task
        self._drain()

    def _run(self) -> None:
        while True:
            self._wake.wait(self._interval)
            self._wake.clear()
            self._drain()
            if self._stopping:
                self._drain()
                return

    def _drain(self) -> None:
        queue = self._queue
        while queue:
            self._busy = True
            batch = [queue.popleft() for _ in range(min(len(queue), MAX_BATCH))]
            try:
                self._write(self._render(batch))
            except Exception as exc:
                self.failed += len(batch)
                self._report(exc)
            else:
                self.written += len(batch)
            finally:
                self._busy = False

    def _report(self, exc: Exception) -> None:
        if not self._reported:  # not through logging: this may be the log's own writer
            self._reported = True
            stream = sys.__stderr__
            if stream is not None:
                print(f"polyroute: {self.name}: write failed: {exc!r}", file=stream, flush=True)

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until everything queued so far is written (True) or `timeout` passes."""
        if self._worker is None:
            self._drain()
            return True
        deadline = time.monotonic() + timeout
        while self._queue or self._busy:
            self._wake.set()
            if time.monotonic() > deadline:
                return False
            time.sleep(0.005)
        return True

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued (within `timeout`) and stop; later items are dropped."""
        self._closed = True
        thread = self._worker
        if thread is None:
            self._drain()
            return
        self._stopping = True
        self._wake.set()
        thread.join(timeout)
        if thread.is_alive():  # the sink is stuck: what is left is lost
            self.dropped += len(self._queue)
            self._queue.clear()
        self._worker = None
