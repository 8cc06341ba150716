"""SIGKILL a process the moment it publishes a given event: a crash at an exact point.

It runs as a process of its own, so nothing delays the kill (the runner's event loop is
busy with the load): it subscribes to SUBJECT, says `ready`, and at the first message
whose `data.<KEY>` is VALUE it SIGKILLs PID and says `killed`; `timeout` if none came.

    python tests/faults/watcher.py NATS_URL SUBJECT KEY VALUE PID [SECONDS]
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys

import nats
from nats.aio.msg import Msg


async def watch(url: str, subject: str, key: str, value: str, pid: int, seconds: float) -> str:
    nc = await nats.connect(url, connect_timeout=2)
    fired = asyncio.Event()

    async def on_message(msg: Msg) -> None:
        try:
            data = json.loads(msg.data)["data"]
        except (ValueError, KeyError, TypeError):
            return
        if not fired.is_set() and str(data.get(key)) == value:
            os.kill(pid, signal.SIGKILL)
            fired.set()

    await nc.subscribe(subject, cb=on_message)
    await nc.flush()
    print("ready", flush=True)
    try:
        await asyncio.wait_for(fired.wait(), seconds)
        return "killed"
    except TimeoutError:
        return "timeout"
    finally:
        await nc.close()


if __name__ == "__main__":
    url, subject, key, value, pid = sys.argv[1:6]
    seconds = float(sys.argv[6]) if len(sys.argv) > 6 else 15.0
    print(asyncio.run(watch(url, subject, key, value, int(pid), seconds)), flush=True)
