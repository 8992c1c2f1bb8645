"""The event loop a stand-in serves on, in a daemon thread of the test process."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable


def stop_serving(
    loop: asyncio.AbstractEventLoop,
    thread: threading.Thread,
    close: Callable[[], Awaitable[None]],
) -> None:
    """Close what `close` closes (listeners, connections), cancel every task still running
    on the loop, then stop the loop, join its thread and close the loop."""

    async def shutdown() -> None:
        await close()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run_coroutine_threadsafe(shutdown(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.close()
