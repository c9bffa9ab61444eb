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
queues a few hundred milliseconds), slow ones a shallow one.

Fairness. Waiting calls are not served first come, first served: each pool takes its
next call round robin over the callers with calls waiting (:class:`FairQueue`; the
caller is the authenticated one). So an operator that queues many calls delays another
operator's call by at most one call per other waiting caller, not by its whole backlog,
and the expected wait used for admission is the new call's own (its round-robin
position), so a light caller is not refused because a heavy one is queued. The heavy-read gate also admits at most one call per caller, so a
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
import concurrent.futures
import functools
import threading
import time
from collections import OrderedDict, deque

from skytwin.server.service import DeadlineError, OverloadedError

__all__ = ["Base", "FairQueue", "Gate", "make_gates"]


class FairQueue:
    """Waiting jobs per caller, served round robin (thread-safe).

    Examples
    --------
    >>> q = FairQueue()
    >>> for key, job in [("a", 1), ("a", 2), ("a", 3), ("b", 4), ("c", 5)]:
    ...     q.put(key, job)
    >>> q.position("b"), q.position("d")        # jobs served before a new one
    (4, 3)
    >>> [q.pop() for _ in range(5)]
    [1, 4, 5, 2, 3]
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._q: OrderedDict = OrderedDict()

    def put(self, key, job) -> None:
        with self._lock:
            self._q.setdefault(key, deque()).append(job)

    def pop(self):
        """The next caller's oldest job; that caller goes to the back of the round."""
        with self._lock:
            key = next(iter(self._q))
            dq = self._q.pop(key)
            job = dq.popleft()
            if dq:
                self._q[key] = dq
            return job

    def position(self, key) -> int:
        """Jobs served before a new job of ``key`` (one round per job ahead of it)."""
        with self._lock:
            mine = len(self._q.get(key, ()))
            return mine + sum(min(len(d), mine + 1) for k, d in self._q.items()
                              if k != key)

    def __len__(self):
        with self._lock:
            return sum(len(d) for d in self._q.values())

    def run_next(self) -> None:
        """Pool task: run the next job (each submitted task runs exactly one)."""
        self.pop()()


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
        self.queue = FairQueue()

    def expected_wait_s(self, caller=None) -> float:
        """Expected queueing time of a call of ``caller`` arriving now: none while a
        thread is free, else its round-robin position x mean service time / threads."""
        waiting = len(self.queue)
        if self.inside - waiting < self.threads:
            return 0.0
        return (self.queue.position(caller) + 1) * self.mean_s / self.threads

    def observe(self, service_s: float) -> None:
        """Record one call's service time (called from the pool's threads)."""
        self.mean_s = service_s if self.mean_s == 0.0 else 0.8 * self.mean_s + 0.2 * service_s

    def enter(self, caller=None) -> None:
        if self.inside >= self.capacity:
            self.refused += 1
            raise OverloadedError(f"server busy: {self.inside} {self.name} calls in "
                                  f"progress, the limit is {self.capacity}; retry later")
        wait_s = self.expected_wait_s(caller)
        if self.max_wait_s is not None and wait_s > self.max_wait_s:
            self.refused += 1
            raise OverloadedError(f"server busy: {self.inside} {self.name} calls in "
                                  f"progress, about {wait_s:.1f} s of queueing (the limit "
                                  f"is {self.max_wait_s:g} s); retry later")
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

    def _area(self, request):
        """The ``area`` oneof of a ground-layer query: ``(box, None)``, ``(None, cell)``
        (the grid code decoded, its length checked against the limits) or ``(None,
        None)`` when the request names neither."""
        from skytwin.server import convert
        from skytwin.server.limits import LimitError, echo
        area = request.WhichOneof("area")
        if area == "box":
            return convert.box_from_proto(request.box), None
        if area == "grid_code":
            lim = self.core.limits
            if len(request.grid_code) > lim.max_grid_code_chars:
                raise LimitError(f"grid_code: {len(request.grid_code)} characters, over "
                                 f"the limit of {lim.max_grid_code_chars} (starts "
                                 f"{echo(request.grid_code, lim.echo_chars)})")
            return None, self.core.decode_grid_code(request.grid_code)
        return None, None

    async def _call(self, pool, gate, limit_s, context, fn, *args, caller=None, **kwargs):
        if caller is None:
            from skytwin.server.auth import caller_or_none
            caller = caller_or_none()
        gate.enter(caller)
        loop = asyncio.get_running_loop()
        work = functools.partial(fn, *args, **kwargs)
        cf: concurrent.futures.Future = concurrent.futures.Future()

        def job():
            if not cf.set_running_or_notify_cancel():
                return                     # withdrawn while waiting
            t0 = time.perf_counter()
            try:
                result = work()
            except BaseException as exc:  # noqa: BLE001 - handed to the caller
                cf.set_exception(exc)
            else:
                cf.set_result(result)
            finally:
                gate.observe(time.perf_counter() - t0)
        cf.add_done_callback(lambda _f: loop.call_soon_threadsafe(gate.leave, caller))
        gate.queue.put(caller, job)
        try:
            pool.submit(gate.queue.run_next)
        except BaseException:
            cf.cancel()
            raise
        timeout = self.timeout_s(context, limit_s)
        afut = asyncio.wrap_future(cf)
        # a call abandoned at its deadline may still fail later: retrieve that quietly
        afut.add_done_callback(lambda f: f.cancelled() or f.exception())
        try:
            return await asyncio.wait_for(asyncio.shield(afut), timeout)
        except (TimeoutError, asyncio.TimeoutError):
            cf.cancel()       # withdrawn if still waiting; a running call finishes alone
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
