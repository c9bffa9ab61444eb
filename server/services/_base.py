"""Shared servicer plumbing: run core calls in the thread pool, with the deadline."""

from __future__ import annotations

import asyncio
import functools
import time

__all__ = ["Base"]


class Base:
    """Holds the service core and the planning thread pool."""

    def __init__(self, core, executor):
        self.core = core
        self.executor = executor

    async def run(self, fn, *args, **kwargs):
        """``fn(*args, **kwargs)`` on the thread pool (the event loop never blocks)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, functools.partial(fn, *args, **kwargs))

    @staticmethod
    def deadline_s(context) -> float | None:
        """The call's deadline on ``time.monotonic()``'s clock, or None."""
        rem = context.time_remaining()
        return None if rem is None else time.monotonic() + rem
