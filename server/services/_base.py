"""Shared servicer plumbing: run core calls in the thread pool, with the deadline."""

from __future__ import annotations

import asyncio
import functools
import time

__all__ = ["Base"]


class Base:
    """Holds the service core, the planning pool and the pool for cheap calls."""

    def __init__(self, core, executor, fast_executor=None):
        self.core = core
        self.executor = executor
        self.fast_executor = fast_executor or executor

    async def run(self, fn, *args, **kwargs):
        """``fn(*args, **kwargs)`` on the planning pool (the event loop never blocks)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, functools.partial(fn, *args, **kwargs))

    async def run_fast(self, fn, *args, **kwargs):
        """Like :meth:`run`, on the pool for calls that do not plan routes."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.fast_executor,
                                          functools.partial(fn, *args, **kwargs))

    @staticmethod
    def deadline_s(context) -> float | None:
        """The call's deadline on ``time.monotonic()``'s clock, or None."""
        rem = context.time_remaining()
        return None if rem is None else time.monotonic() + rem
