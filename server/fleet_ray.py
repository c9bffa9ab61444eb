"""Fan a fleet-day out over Ray: the executor :mod:`planner.fleetday` is given.

Why Ray and why this shape
--------------------------
Batch planning of very large fleets fans out over an existing distributed engine
(DESIGN, "Beyond one machine"); Ray runs the same Python functions on one machine or a
cluster and has a shared-memory object store. The planner stays free of Ray:
:mod:`planner.fleetday` cuts the work into pure, deterministic tasks (chunks of ~100
routes; deconfliction windows) and calls ``executor.map(fn, items, progress)``; this
module is that executor and nothing else.

* **The twin is put once.** ``ray.put(twin)`` stores it in the object store; each worker
  is an *actor* that receives the reference once, in its constructor (its numpy arrays
  are read-only, zero-copy views of the store on the same node; the building list is
  unpickled once per actor), and keeps one :class:`planner.fleetday.FleetWorker`
  (twin + planner with its reusable search workspace) for every task it runs. Tasks
  carry only their own small inputs (an index range, or a window's trajectories).
* **Numba is not recompiled.** Kernels use ``cache=True`` (``airspace/_jit.py``); on one
  machine every worker reads the cache the driver wrote next to the sources. On a
  cluster, set ``NUMBA_CACHE_DIR`` to a directory every node shares: the driver's value
  is forwarded to the workers (``runtime_env``). :meth:`RayExecutor.numba_cache_stats`
  asks each worker how many kernels it loaded from the cache and how many it compiled,
  so a run can show (and a test assert) that workers hit the cache.
* **Same answer as one process.** Results are put back in item order, and each task is
  deterministic, so the outcome equals :class:`planner.fleetday.LocalExecutor`'s.
* **Progress.** ``progress(done, total)`` is called as tasks finish (``ray.wait``); each
  actor has at most two tasks queued so a slow task does not hold others back.
"""

from __future__ import annotations

import os
import sys

__all__ = ["RayExecutor", "RayUnavailableError", "check_address", "numba_cache_counts"]


class RayUnavailableError(RuntimeError):
    """Ray is not installed or the cluster address cannot be reached."""


def numba_cache_counts(prefix: str = "skytwin.") -> dict:
    """Cache hits and misses (= compilations) of every numba kernel loaded in this process
    from modules under ``prefix``: ``{"hits", "misses", "kernels", "compiled"}`` (the
    names of the kernels compiled here)."""
    try:
        from numba.core.dispatcher import Dispatcher
    except ImportError:     # pragma: no cover - numba is a hard dependency
        return {"hits": 0, "misses": 0, "kernels": 0, "compiled": []}
    hits = misses = kernels = 0
    compiled = []
    seen = set()
    for name, mod in list(sys.modules.items()):
        if not name.startswith(prefix) or mod is None:
            continue
        for obj in list(vars(mod).values()):
            if isinstance(obj, Dispatcher) and id(obj) not in seen:
                seen.add(id(obj))
                st = obj.stats
                h, m = sum(st.cache_hits.values()), sum(st.cache_misses.values())
                if h or m:
                    kernels += 1
                if m:
                    compiled.append(f"{name}.{obj.py_func.__name__}")
                hits += h
                misses += m
    return {"hits": hits, "misses": misses, "kernels": kernels, "compiled": compiled}


def check_address(address: str, timeout_s: float = 5.0) -> None:
    """Raise :class:`RayUnavailableError` unless a TCP connection to a cluster address
    ``HOST:PORT`` / ``ray://HOST:PORT`` opens (``ray.init`` retries an unreachable address
    for minutes); ``local`` and ``auto`` pass."""
    if address in ("local", "auto"):
        return
    import socket
    hostport = address.split("://", 1)[-1]
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise RayUnavailableError(f"Ray address {address!r} is not HOST:PORT or "
                                  "ray://HOST:PORT")
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise RayUnavailableError(f"cannot reach Ray at {address!r}: {exc}") from None


def _actor_class(ray):
    @ray.remote(num_cpus=1)
    class FleetActor:
        def __init__(self, twin):
            from skytwin.planner.fleetday import FleetWorker
            self.worker = FleetWorker(twin)

        def run(self, fn, item):
            return fn(self.worker, item)

        def cache_stats(self):
            return dict(numba_cache_counts(), pid=os.getpid())

    return FleetActor


class RayExecutor:
    """Executor for :mod:`planner.fleetday` on Ray actors holding one shared twin.

    Parameters
    ----------
    twin : airspace.twin.Twin or None
        Put once into the object store (None for deconfliction only).
    address : str
        ``"local"``: start a Ray instance on this machine (``num_cpus`` CPUs);
        ``"auto"``: join the cluster this machine belongs to; else a cluster address
        (``ray://host:10001`` or ``host:6379``).
    num_cpus : int, optional
        CPUs of the local instance (default: all); ignored when joining a cluster.
    workers : int, optional
        Actors to start (default: the cluster's CPUs).

    Raises
    ------
    RayUnavailableError
        Ray is not installed, or the address cannot be reached.
    """

    def __init__(self, twin=None, address: str = "local", num_cpus: int | None = None,
                 workers: int | None = None):
        try:
            import ray
        except ImportError as exc:
            raise RayUnavailableError(
                "Ray is not installed: pip install 'skytwin[ray]' (or pip install ray)"
            ) from exc
        self._ray = ray
        env = {"env_vars": {"NUMBA_CACHE_DIR": os.environ["NUMBA_CACHE_DIR"]}} \
            if os.environ.get("NUMBA_CACHE_DIR") else None
        self._started = False
        if not ray.is_initialized():
            check_address(address)
            try:
                if address == "local":
                    ray.init(num_cpus=num_cpus, include_dashboard=False,
                             logging_level="WARNING", log_to_driver=False,
                             runtime_env=env)
                else:
                    ray.init(address=address, logging_level="WARNING",
                             log_to_driver=False, runtime_env=env)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise RayUnavailableError(f"cannot start or reach Ray at {address!r}: "
                                          f"{exc}") from exc
            self._started = True
        cpus = int(ray.cluster_resources().get("CPU", 1))
        n = max(1, int(workers or cpus))
        twin_ref = ray.put(twin)
        actor = _actor_class(ray)
        self.actors = [actor.remote(twin_ref) for _ in range(n)]

    def map(self, fn, items, progress=None) -> list:
        """``[fn(worker, item) for item in items]`` on the actors, in item order."""
        ray = self._ray
        items = list(items)
        out = [None] * len(items)
        pending: dict = {}
        nxt = 0
        free = [a for a in self.actors for _ in range(2)]
        done = 0
        while nxt < len(items) or pending:
            while free and nxt < len(items):
                a = free.pop(0)
                pending[a.run.remote(fn, items[nxt])] = (nxt, a)
                nxt += 1
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                k, a = pending.pop(ref)
                out[k] = ray.get(ref)
                free.append(a)
                done += 1
                if progress is not None:
                    progress(done, len(items))
        return out

    def broadcast(self, fn, item) -> list:
        """``fn(worker, item)`` once on every actor (e.g. a warm-up); their results."""
        return self._ray.get([a.run.remote(fn, item) for a in self.actors])

    def numba_cache_stats(self) -> list[dict]:
        """Per actor: numba kernels loaded from the cache (``hits``) and compiled
        (``misses``) so far, and its ``pid``."""
        return self._ray.get([a.cache_stats.remote() for a in self.actors])

    def close(self) -> None:
        """Stop the actors, and Ray itself when this executor started it."""
        for a in self.actors:
            self._ray.kill(a)
        self.actors = []
        if self._started:
            self._ray.shutdown()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
