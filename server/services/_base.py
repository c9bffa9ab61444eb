"""Shared servicer plumbing: admission, server-side deadlines, the thread pools.

Design
------
Every core call leaves the event loop on one of three pools: planning (PlanRoute,
SubmitFlight, SubmitBatch), heavy reads (QueryBlockedCodes, ED-269 import and export:
one thread) or the small pool for cheap calls (get, list, cancel, zones). Each pool has
a :class:`Gate`: at most ``threads + max_waiting`` calls may be admitted (running or
queued), and a call that would have to queue is admitted only while its expected wait
(calls ahead of it x the recent mean service time of the pool / threads) is at most
``max_queue_wait_s``; otherwise it is refused at once with RESOURCE_EXHAUSTED
(:class:`~server.service.OverloadedError`) instead of queueing for tens of seconds
behind the others. Fast calls thus keep a deep queue (a load test at concurrency 64
queues a few hundred milliseconds), slow ones a shallow one. The heavy-read gate also admits at most one call per caller, so a
caller repeating expensive queries waits for its own, never makes another caller wait
for more than one query per other caller. A call holds its place until its thread really
finishes (a call that timed out still occupies its thread), so the count never
under-states the work in progress.

Each RPC class has a server-side deadline (``deadline_plan_s``, ``deadline_batch_s``,
``deadline_fast_s`` in :class:`server.limits.Limits`); the effective deadline is the
earlier of it and the client's. When it passes, the caller gets DEADLINE_EXCEEDED; a
call still queued is withdrawn, and the booking paths check the same deadline before
they reserve anything (nothing is booked after the caller was told it failed).
"""

from __future__ import annotations

import asyncio
import functools
import time

from skytwin.server.service import DeadlineError, OverloadedError

__all__ = ["Base", "Gate", "make_gates"]


class Gate:
    """Admission counter of one pool (event-loop thread only, no lock needed);
    ``per_caller`` caps the calls of one caller in progress (None: no cap)."""

    def __init__(self, name: str, capacity: int, per_caller: int | None = None,
                 threads: int = 1, max_wait_s: float | None = None):
        self.name = name
        self.capacity = int(capacity)
        self.per_caller = per_caller
        self.threads = max(1, int(threads))
        self.max_wait_s = max_wait_s
        self.mean_s = 0.0          # recent mean service time (EWMA, set by observe)
        self.inside = 0
        self.refused = 0
        self._by_caller: dict = {}

    def expected_wait_s(self) -> float:
        """Expected queueing time of a call arriving now."""
        ahead = self.inside - self.threads + 1
        return max(0, ahead) * self.mean_s / self.threads

    def observe(self, service_s: float) -> None:
        """Record one call's service time (called from the pool's threads)."""
        self.mean_s = service_s if self.mean_s == 0.0 else 0.8 * self.mean_s + 0.2 * service_s

    def enter(self, caller=None) -> None:
        if self.inside >= self.capacity:
            self.refused += 1
            raise OverloadedError(f"server busy: {self.inside} {self.name} calls in "
                                  f"progress, the limit is {self.capacity}; retry later")
        if self.max_wait_s is not None and self.expected_wait_s() > self.max_wait_s:
            self.refused += 1
            raise OverloadedError(f"server busy: {self.inside} {self.name} calls in "
                                  f"progress, about {self.expected_wait_s():.1f} s of "
                                  f"queueing (the limit is {self.max_wait_s:g} s); retry "
                                  "later")
        if self.per_caller is not None and caller is not None:
            mine = self._by_caller.get(caller, 0)
            if mine >= self.per_caller:
                self.refused += 1
                raise OverloadedError(f"{mine} {self.name} call(s) of this caller in "
                                      f"progress, the limit is {self.per_caller}; wait for "
                                      "it to finish")
            self._by_caller[caller] = mine + 1
        self.inside += 1

    def leave(self, caller=None) -> None:
        self.inside -= 1
        if self.per_caller is not None and caller is not None:
            n = self._by_caller.get(caller, 1) - 1
            if n:
                self._by_caller[caller] = n
            else:
                self._by_caller.pop(caller, None)


def make_gates(lim, plan_threads: int, fast_threads: int, query_threads: int = 1):
    """The three gates (planning, quick, heavy read) for these pool sizes."""
    return (Gate("planning", plan_threads + lim.max_waiting_plan, threads=plan_threads,
                 max_wait_s=lim.max_queue_wait_s),
            Gate("quick", fast_threads + lim.max_waiting_fast, threads=fast_threads,
                 max_wait_s=lim.max_queue_wait_s),
            Gate("heavy read", query_threads + lim.max_waiting_query, per_caller=1,
                 threads=query_threads))


class Base:
    """Holds the service core, the planning pool and the pool for cheap calls."""

    def __init__(self, core, executor, fast_executor=None, gates=None, query_executor=None):
        self.core = core
        self.executor = executor
        self.fast_executor = fast_executor or executor
        self.query_executor = query_executor or self.fast_executor
        lim = core.limits
        if gates is None:
            gates = make_gates(lim, getattr(executor, "_max_workers", 4),
                               getattr(self.fast_executor, "_max_workers", 2))
        self.plan_gate, self.fast_gate, self.query_gate = gates

    async def _call(self, pool, gate, limit_s, context, fn, *args, caller=None, **kwargs):
        gate.enter(caller)
        loop = asyncio.get_running_loop()
        work = functools.partial(fn, *args, **kwargs)

        def timed_work():
            t0 = time.perf_counter()
            try:
                return work()
            finally:
                gate.observe(time.perf_counter() - t0)
        try:
            cf = pool.submit(timed_work)
        except BaseException:
            gate.leave(caller)
            raise
        cf.add_done_callback(lambda _f: loop.call_soon_threadsafe(gate.leave, caller))
        timeout = self.timeout_s(context, limit_s)
        afut = asyncio.wrap_future(cf)
        # a call abandoned at its deadline may still fail later: retrieve that quietly
        afut.add_done_callback(lambda f: f.cancelled() or f.exception())
        try:
            return await asyncio.wait_for(asyncio.shield(afut), timeout)
        except (TimeoutError, asyncio.TimeoutError):
            cf.cancel()       # withdrawn if still queued; a running call finishes alone
            raise DeadlineError(f"deadline of {timeout:.3g} s exceeded") from None
        except asyncio.CancelledError:
            cf.cancel()
            raise

    async def run(self, fn, *args, **kwargs):
        """``fn(*args, **kwargs)`` on the planning pool (deadline ``deadline_plan_s``)."""
        return await self._call(self.executor, self.plan_gate, self.core.limits.deadline_plan_s,
                                None, fn, *args, **kwargs)

    async def run_in(self, context, limit_s, fn, *args, **kwargs):
        """Like :meth:`run` with the client's deadline and a given server deadline."""
        return await self._call(self.executor, self.plan_gate, limit_s, context, fn,
                                *args, **kwargs)

    async def run_fast(self, fn, *args, **kwargs):
        """Like :meth:`run`, on the pool for calls that do not plan routes."""
        return await self._call(self.fast_executor, self.fast_gate,
                                self.core.limits.deadline_fast_s, None, fn, *args, **kwargs)

    async def run_query(self, caller, fn, *args, **kwargs):
        """Like :meth:`run_fast`, on the one-thread pool for heavy reads (one call per
        caller at a time)."""
        return await self._call(self.query_executor, self.query_gate,
                                self.core.limits.deadline_fast_s, None, fn, *args,
                                caller=caller, **kwargs)

    @staticmethod
    def timeout_s(context, limit_s: float) -> float:
        """Seconds left: the earlier of the client's deadline and ``limit_s``."""
        rem = None if context is None else context.time_remaining()
        return limit_s if rem is None else max(0.0, min(rem, limit_s))

    @staticmethod
    def deadline_s(context, limit_s: float | None = None) -> float | None:
        """The call's deadline on ``time.monotonic()``'s clock (the earlier of the
        client's and ``limit_s`` from now), or None when neither is set."""
        rem = context.time_remaining() if context is not None else None
        if limit_s is not None:
            rem = limit_s if rem is None else min(rem, limit_s)
        return None if rem is None else time.monotonic() + rem
