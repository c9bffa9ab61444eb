"""Route planning in worker processes that share the twin read-only (issue 14, part 2).

Why processes
-------------
The A* kernel releases the GIL, but the rest of a plan (window grids, smoothing with
shapely's exact checks, timing, the exposure report) is Python and holds it: one
server process planned at most ~1.5 cores on this 2-core machine, and its planning
threads competed for the GIL with the gRPC event loop and the booking critical
section. A pool of worker processes takes the planning off the serving process, which
keeps only the transport, the conflict checks and the commit.

Why fork, and what is shared
----------------------------
The pool is started (:meth:`PlanPool.start`) once the service core is built and warm,
**before** the gRPC server, the live-operations threads or any request exist: each
worker is a ``fork`` of the serving process, so it inherits the twin (obstacle field,
ground, building geometry and its STRtree), the planning pyramids and reachability
labels (built beforehand by :meth:`server.service.ServiceCore.prepare_planning`), the
ground layers and the numba kernels already compiled, as copy-on-write pages: nothing
is copied, pickled or recompiled per worker, and the pages stay shared as long as
nobody writes them (the twin is immutable; Python reference counts touch object
headers, not the arrays' data). ``benchmarks/bench_service.py`` reports each worker's
unique and proportional memory (``/proc/PID/smaps_rollup``) to check this. A
memory-mapped twin file would also share the arrays but not the shapely geometry,
which every worker would have to rebuild; ``fork`` at start-up shares both.

What changes at run time travels with the jobs: the regulators' zones and the
derived-zone overrides. Each job carries the core's generation (``_zone_gen`` and the
ground layers' ``generation``); a worker that holds an older one receives the zones
and overrides with the job and applies them before planning. So a worker never plans
with zones older than those the serving process had when the job was sent, which is
what planning in a thread gave too (and a booking re-checks every zone in its
critical section anyway).

Dispatch is synchronous: a planning thread of the server takes an idle worker, sends
the job through the worker's pipe and waits for the answer (the wait releases the
GIL); the server's planning threads (``--workers``) bound the calls in flight and the
processes (``--plan-processes``) the plans running at once. Errors come back as the
same exception types with their attributes (a :class:`~planner.route.PlanError`
keeps its ``code`` and ``blocking``), so the status mapping does not change. A worker
that dies (killed, out of memory) is dropped and logged; the call that was running on
it fails with :class:`PlanWorkerLostError` (UNAVAILABLE: retry) and, when no worker is
left, planning falls back to the serving process's threads.
"""

from __future__ import annotations

import gc
import logging
import multiprocessing
import os
import queue
import threading

__all__ = ["PlanPool", "PlanWorkerLostError"]

log = logging.getLogger(__name__)


class PlanWorkerLostError(RuntimeError):
    """The worker process planning this call died (the call may be retried)."""


def _pack_error(exc: BaseException):
    return (type(exc), exc.args, dict(getattr(exc, "__dict__", {})))


def _unpack_error(packed) -> BaseException:
    cls, args, attrs = packed
    try:
        exc = cls.__new__(cls)
        exc.args = args
        exc.__dict__.update(attrs)
    except Exception:   # noqa: BLE001 - an exotic exception type: keep its text
        exc = RuntimeError(f"{cls.__name__}: {args[0] if args else ''}")
    return exc


def _worker_main(conn, core, server_pid: int, orphan_check_s: float = 1.0) -> None:
    """Loop of one worker process: ``(state, method, args)`` in, ``(ok, value)`` out.

    Ends when the server asks (``None``), when the pipe closes, or when the server
    process is gone (checked every ``orphan_check_s`` while idle: a fork keeps copies of
    the server's pipe ends, so a server killed with SIGKILL gives its workers no EOF).
    """
    core._plan_pool = None          # plan here, never forward again
    key = None
    while True:
        try:
            while not conn.poll(orphan_check_s):
                if os.getppid() != server_pid:
                    return          # re-parented: the server died
            msg = conn.recv()
        except (EOFError, OSError, KeyboardInterrupt):
            return
        if msg is None:
            return
        new_key, state, method, args = msg
        try:
            if state is not None:
                core.apply_plan_state(state)
                key = new_key
            elif new_key != key:
                raise RuntimeError("worker state out of date and no state sent")
            out = (True, getattr(core, method)(*args))
        except BaseException as exc:   # noqa: BLE001 - every error goes back
            out = (False, _pack_error(exc))
        try:
            conn.send(out)
        except (EOFError, OSError, BrokenPipeError):
            return
        except Exception as exc:   # noqa: BLE001 - an answer that does not pickle
            conn.send((False, _pack_error(RuntimeError(f"answer not sendable: {exc}"))))


class _Worker:
    def __init__(self, proc, conn):
        self.proc = proc
        self.conn = conn
        self.key = None          # the plan state this worker holds


class PlanPool:
    """``processes`` forked planners for one :class:`~server.service.ServiceCore`.

    Parameters
    ----------
    core : ServiceCore
        Built and warm (the workers are forks of it). It provides
        ``plan_state_key()``, ``plan_state()``, ``apply_plan_state(state)`` and the
        methods the jobs call (``plan_local``).
    processes : int
        Worker processes (>= 1).
    """

    def __init__(self, core, processes: int):
        if processes < 1:
            raise ValueError(f"plan processes must be >= 1, got {processes}")
        self.core = core
        self.processes = int(processes)
        self._idle: queue.Queue = queue.Queue()
        self._workers: list[_Worker] = []
        self._lock = threading.Lock()
        self._closed = False
        self.lost = 0

    def start(self) -> PlanPool:
        """Fork the workers now (call before starting any other thread that matters:
        see the module docstring).

        Everything alive is first moved to the collector's permanent generation
        (``gc.freeze``): a worker's full collections then walk only the objects it made
        itself, not the twin's geometry and tables it inherited (115-120 ms each in the
        load test before, every few seconds, inside a plan), and they no longer write
        to the inherited objects' headers, which copied those pages into each worker."""
        gc.collect()
        gc.freeze()
        ctx = multiprocessing.get_context("fork")
        for n in range(self.processes):
            parent, child = ctx.Pipe(duplex=True)
            proc = ctx.Process(target=_worker_main, args=(child, self.core, os.getpid()),
                               name=f"skytwin-planner-{n}", daemon=True)
            proc.start()
            child.close()
            w = _Worker(proc, parent)
            self._workers.append(w)
            self._idle.put(w)
        log.info("planning in %d worker processes (pids %s)", self.processes,
                 ", ".join(str(w.proc.pid) for w in self._workers))
        return self

    @property
    def alive(self) -> int:
        return sum(w.proc.is_alive() for w in self._workers)

    def pids(self) -> list[int]:
        return [w.proc.pid for w in self._workers if w.proc.is_alive()]

    def call(self, method: str, *args):
        """Run ``core.<method>(*args)`` in an idle worker; its result or its error.

        Raises :class:`PlanWorkerLostError` when the worker died during the call, and
        ``None``-returns never: when no worker is left the caller must plan itself
        (:attr:`alive` is 0)."""
        while True:
            if self._closed or not any(w.proc.is_alive() for w in self._workers):
                raise PlanWorkerLostError("no planning worker process is running")
            try:
                w = self._idle.get(timeout=1.0)
            except queue.Empty:
                continue
            if w.proc.is_alive():
                break
            self._drop(w)
        key = self.core.plan_state_key()
        state = None if key == w.key else self.core.plan_state()
        try:
            w.conn.send((key, state, method, args))
            ok, value = w.conn.recv()
        except (EOFError, OSError, BrokenPipeError):
            self._drop(w)
            raise PlanWorkerLostError(
                f"planning worker process {w.proc.pid} died during the call; retry"
            ) from None
        except BaseException:
            # interrupted while the worker still works on it: the pipe's next answer
            # is this job's, so the worker cannot serve another call; retire it
            self._drop(w, kill=True)
            raise
        w.key = key
        self._idle.put(w)
        if ok:
            return value
        raise _unpack_error(value)

    def _drop(self, w: _Worker, kill: bool = False) -> None:
        with self._lock:
            if w not in self._workers:
                return
            self._workers.remove(w)
            self.lost += 1
        if kill and w.proc.is_alive():
            w.proc.kill()
        w.proc.join(1.0)
        try:
            w.conn.close()
        except OSError:
            pass
        log.error("planning worker process %s is gone (exit code %s); %d left",
                  w.proc.pid, w.proc.exitcode, len(self._workers))

    def memory(self) -> list[dict]:
        """Per worker: resident, proportional and unique memory [bytes]
        (``/proc/PID/smaps_rollup``: Rss, Pss, Private_*)."""
        out = []
        for pid in self.pids():
            try:
                text = open(f"/proc/{pid}/smaps_rollup").read()
            except OSError:
                continue
            kb = {}
            for line in text.splitlines()[1:]:
                parts = line.split()
                if len(parts) >= 2 and parts[1].isdigit():
                    kb[parts[0].rstrip(":")] = int(parts[1])
            out.append({"pid": pid, "rss": kb.get("Rss", 0) * 1024,
                        "pss": kb.get("Pss", 0) * 1024,
                        "unique": (kb.get("Private_Clean", 0)
                                   + kb.get("Private_Dirty", 0)) * 1024})
        return out

    def close(self) -> None:
        self._closed = True
        for w in list(self._workers):
            try:
                w.conn.send(None)
            except (OSError, BrokenPipeError):
                pass
        for w in list(self._workers):
            w.proc.join(2.0)
            if w.proc.is_alive():
                w.proc.kill()
                w.proc.join(1.0)
            try:
                w.conn.close()
            except OSError:
                pass
        self._workers.clear()


def default_processes() -> int:
    """One worker per core (``os.sched_getaffinity``)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:   # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)
