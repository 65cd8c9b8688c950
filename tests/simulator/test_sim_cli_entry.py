"""The blocking `run()` entry point behind `polyroute simulate`, as a real process."""

from __future__ import annotations

import asyncio
import re
import signal
import sys

import aiohttp

_CODE = (
    "from polyroute.providers.simulator import load_profile, server;"
    "server.run(load_profile('instant'), host='127.0.0.1', port=0)"
)


async def test_run_prints_url_serves_and_exits_on_sigterm() -> None:
    """run() prints one 'listening' line, serves requests, and exits 0 on SIGTERM."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _CODE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 10)).decode()
        match = re.fullmatch(r"simulator instant listening on (http://127\.0\.0\.1:\d+/v1)\n", line)
        assert match, line
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{match[1]}/models") as response,
        ):
            assert (await response.json())["data"][0]["id"] == "instant"
        proc.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(proc.communicate(), 10)
        assert proc.returncode == 0, stderr.decode()
        assert stderr == b""
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
