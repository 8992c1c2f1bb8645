"""One client process of the real-time benchmark: a slice of the 2,000 Socket.IO clients
(python-socketio's asyncio client), driven by bench.realtime over stdin/stdout JSON lines.

Each pair is (a, b): b watches a's presence; a types to b. Latencies are measured where
they are received: typing and presence on this process's monotonic clock (sender and
receiver live here), worker events on the wall clock against the worker's emitted_at.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from datetime import datetime
from typing import Any

import socketio

CONNECT_CONCURRENCY = 25
KINDS = ("typing", "presence", "event", "e2e")


class Pair:
    def __init__(self, spec: dict[str, Any]):
        self.spec = spec
        self.a = socketio.AsyncClient(reconnection=False)
        self.b = socketio.AsyncClient(reconnection=False)


class Slice:
    def __init__(self, pairs: list[dict[str, Any]]):
        self.pairs = [Pair(spec) for spec in pairs]
        self.sent: dict[tuple[Any, ...], float] = {}
        self.samples: dict[str, list[float]] = {k: [] for k in KINDS}
        self.counts: dict[str, int] = {"typing": 0, "presence": 0, "event": 0, "errors": 0}

    def wire(self, pair: Pair) -> None:
        a_id = pair.spec["a"]
        index = pair.spec["index"]

        @pair.b.on("typing_progress")
        async def on_typing(data: dict[str, Any]) -> None:
            started = self.sent.pop(("t", index, data["char_count"]), None)
            if started is not None:
                self.samples["typing"].append((time.perf_counter() - started) * 1000)
                self.counts["typing"] += 1

        @pair.b.on("user_presence_update")
        async def on_presence(data: dict[str, Any]) -> None:
            if data["user_id"] != a_id:
                return
            started = self.sent.pop(("p", a_id), None)
            if started is not None:
                self.samples["presence"].append((time.perf_counter() - started) * 1000)
                self.counts["presence"] += 1

        @pair.a.on("boost_activated")
        async def on_event(data: dict[str, Any]) -> None:
            now = time.time()
            emitted = datetime.fromisoformat(data["emitted_at"].replace("Z", "+00:00"))
            self.samples["event"].append((now - emitted.timestamp()) * 1000)
            self.samples["e2e"].append((now - data["payload"]["sent_at"]) * 1000)
            self.counts["event"] += 1

        for client in (pair.a, pair.b):

            @client.on("error")
            async def on_error(_data: Any) -> None:
                self.counts["errors"] += 1

    async def connect(self) -> None:
        gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

        async def one(client: socketio.AsyncClient, url: str, token: str) -> None:
            async with gate:
                await client.connect(
                    url, auth={"token": token}, transports=["websocket"], wait_timeout=30
                )

        jobs = []
        for pair in self.pairs:
            self.wire(pair)
            jobs.append(one(pair.a, pair.spec["url_a"], pair.spec["token_a"]))
            jobs.append(one(pair.b, pair.spec["url_b"], pair.spec["token_b"]))
        await asyncio.gather(*jobs)
        await asyncio.gather(
            *(p.b.call("presence_subscribe", {"user_ids": [p.spec["a"]]}) for p in self.pairs)
        )

    async def typing(self, rate: float, seconds: float) -> int:
        """Each sender in turn sends a typing_progress (a unique char_count marks it)."""
        total = int(rate * seconds)
        interval = 1 / rate
        start = time.perf_counter()
        for n in range(total):
            pair = self.pairs[n % len(self.pairs)]
            marker = n // len(self.pairs)
            self.sent[("t", pair.spec["index"], marker)] = time.perf_counter()
            await pair.a.emit(
                "typing_progress",
                {
                    "conversation_id": pair.spec["conversation"],
                    "char_count": marker,
                    "duration_ms": 100,
                },
            )
            await asyncio.sleep(max(0.0, start + (n + 1) * interval - time.perf_counter()))
        return total

    async def presence(self, rate: float, seconds: float) -> int:
        total = int(rate * seconds)
        interval = 1 / rate
        start = time.perf_counter()
        for n in range(total):
            pair = self.pairs[n % len(self.pairs)]
            round_ = n // len(self.pairs)
            self.sent[("p", pair.spec["a"])] = time.perf_counter()
            status = "busy" if round_ % 2 == 0 else "online"
            await pair.a.emit("presence_update", {"status": status})
            await asyncio.sleep(max(0.0, start + (n + 1) * interval - time.perf_counter()))
        return total

    def report(self, phase: str, sent: int) -> dict[str, Any]:
        samples = self.samples
        answer = {
            "phase": phase,
            "sent": sent,
            "counts": dict(self.counts),
            "samples": {k: v for k, v in samples.items() if v},
        }
        self.samples = {k: [] for k in samples}
        self.counts = {k: 0 for k in self.counts}
        return answer


async def main() -> None:
    spec = json.loads(sys.stdin.readline())
    work = Slice(spec["pairs"])
    await work.connect()
    print(json.dumps({"ready": len(work.pairs) * 2}), flush=True)
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            break
        command = json.loads(line)
        if command["do"] == "typing":
            sent = await work.typing(command["rate"], command["seconds"])
        elif command["do"] == "presence":
            sent = await work.presence(command["rate"], command["seconds"])
        elif command["do"] == "listen":
            continue  # events arrive on their own; "report" ends the phase
        elif command["do"] == "report":
            sent = 0
        else:
            break
        await asyncio.sleep(command.get("settle", 1.5))
        print(json.dumps(work.report(command["do"], sent)), flush=True)
    await asyncio.gather(*(c.disconnect() for p in work.pairs for c in (p.a, p.b)))


if __name__ == "__main__":
    asyncio.run(main())
