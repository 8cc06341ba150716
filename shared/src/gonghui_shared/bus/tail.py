"""Watch events flow: `python -m gonghui_shared.bus.tail [subject]`.

Prints every event on the bus as one line (subject, aggregate, data), so a
newcomer running `make run` can see what each write publishes. It is a plain
NATS subscription: it sees events as they are published and touches no
consumer a service depends on.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys

import nats


async def tail(servers: str, subject: str) -> None:
    nc = await nats.connect(servers=servers.split(","), connect_timeout=3)
    sub = await nc.subscribe(subject)
    print(f"watching {subject} on {servers} (Ctrl-C to stop)", file=sys.stderr)
    async for msg in sub.messages:
        try:
            body = json.loads(msg.data)
            line = {
                "subject": msg.subject,
                "aggregate_id": body.get("aggregate_id"),
                "occurred_at": body.get("occurred_at"),
                "data": body.get("data"),
            }
        except ValueError:
            line = {"subject": msg.subject, "raw": msg.data.decode(errors="replace")}
        print(json.dumps(line, ensure_ascii=False), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("subject", nargs="?", default=None, help="default: <root>.>")
    args = parser.parse_args()
    servers = (
        os.environ.get("GONGHUI_NATS_URL") or os.environ.get("NATS_URL") or "nats://127.0.0.1:4222"
    )
    root = os.environ.get("GONGHUI_SUBJECT_ROOT", "gonghui")
    try:
        asyncio.run(tail(servers, args.subject or f"{root}.>"))
    except KeyboardInterrupt:
        pass
    except Exception as exc:  # noqa: BLE001 - a CLI says what went wrong in one line
        sys.exit(f"cannot watch events: {exc}")


if __name__ == "__main__":
    main()
