"""Assemble the gRPC server: config -> twin, store, core, servicers, interceptors.

Design
------
:func:`build_server` does everything that can fail before the first request: it loads
(or builds) the twin, opens the store, rebuilds the reservation index, warms the numba
kernels (one tiny plan: compiling on the first request would cost its caller ~0.2 s),
binds the port and returns ``(server, port)``; :func:`serve` starts it and waits for
SIGINT/SIGTERM, then stops gracefully (in-flight calls get a grace period) and closes
the store. Choices:

* ``grpc.aio`` with one event loop; every planning or booking call leaves the loop via
  ``run_in_executor`` on a ``ThreadPoolExecutor`` (``workers`` threads, one Planner
  each; the numba kernels release the GIL), so the loop keeps serving cheap calls and
  the Watch streams.
* ``("grpc.so_reuseport", 0)``: a port held by a leftover server makes this one fail
  loudly instead of silently splitting the traffic (DESIGN "Known pitfalls").
* Limits: ``grpc.max_receive_message_length`` (RESOURCE_EXHAUSTED from gRPC itself),
  and every other limit in :class:`~server.limits.Limits` (one data file,
  ``fixtures/limits/default_limits.json``; ``ServerConfig.limits``), checked at the
  edge before any work and returned by GetTwinInfo. Each RPC class has a server-side
  deadline, and each pool admits at most ``threads + max_waiting_*`` calls: one more
  is RESOURCE_EXHAUSTED at once (:mod:`server.services._base`). The booking paths
  check the deadline before reserving (:meth:`~server.service.ServiceCore.submit_flight`).
* Interceptors: errors (outer) then auth (inner), so an auth failure is mapped like
  any domain error. Health checking (``grpc.health.v1``, SERVING once warm) and
  reflection are on and need no token.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection

from skytwin.server.auth import DEV_TOKENS, Authenticator, AuthInterceptor, server_credentials
from skytwin.server.errors import ErrorInterceptor
from skytwin.server.limits import Limits, load_limits
from skytwin.server.service import ServiceCore, default_city
from skytwin.server.services import (
    AirspaceServicer,
    ChangeServicer,
    FlightServicer,
    LiveServicer,
    ZoneServicer,
)
from skytwin.v1 import (
    airspace_pb2,
    airspace_pb2_grpc,
    changes_pb2,
    changes_pb2_grpc,
    flights_pb2,
    flights_pb2_grpc,
    live_pb2,
    live_pb2_grpc,
    zones_pb2,
    zones_pb2_grpc,
)

__all__ = ["SERVICE_NAMES", "ServerConfig", "build_server", "load_twin", "serve"]

log = logging.getLogger(__name__)

SERVICE_NAMES = tuple(
    m.DESCRIPTOR.services_by_name[n].full_name
    for m, n in ((airspace_pb2, "AirspaceService"), (zones_pb2, "ZoneService"),
                 (flights_pb2, "FlightService"), (changes_pb2, "ChangeService"),
                 (live_pb2, "LiveService")))


@dataclass
class ServerConfig:
    """Everything the server needs (CLI flags map 1:1)."""

    city: Path = field(default_factory=default_city)
    twin: Path | None = None          # a saved twin (.npz) instead of building from city
    db: Path | str = Path("skytwin.db")   # or a postgresql:// URL (several instances)
    auth: Path = DEV_TOKENS
    host: str = "127.0.0.1"
    port: int = 0
    tls_cert: Path | None = None
    tls_key: Path | None = None
    workers: int = 4
    plan_processes: int = 0           # >0: plan in that many forked processes (workers.py)
    max_message_bytes: int = 4 * 1024 * 1024
    limits: Limits = field(default_factory=load_limits)
    warm_up: bool = True
    grace_s: float = 5.0
    live: bool = True                 # run the live-operations threads (issue 11)
    zone_rules: Path | None = None    # derived-zone rules (issue 13); None = bundled
    population: Path | None = None    # population .csv/.asc; None = estimated from model


def load_twin(config: ServerConfig):
    """The twin to serve and its reference record (what it was built from)."""
    from skytwin.airspace.twin import Twin, build_twin
    if config.twin is not None:
        twin = Twin.load(config.twin)
        ref = {"twin": str(Path(config.twin).resolve())}
    else:
        from skytwin.airspace.io import load_city
        twin = build_twin(load_city(str(config.city)))
        ref = {"city": str(Path(config.city).resolve())}
    ref.update(resolution_m=twin.resolution_m, clearance_m=twin.clearance_m,
               buildings=len(twin.buildings))
    return twin, ref


def build_server(config: ServerConfig, twin=None, twin_ref=None):
    """Build and bind the server (not started); returns ``(server, port)``.

    Call it from the event loop that will run the server. ``twin`` skips loading (tests
    share one twin). The service core is ``server.skytwin_core``.
    """
    from skytwin.server.pgstore import open_store
    if twin is None:
        twin, twin_ref = load_twin(config)
    if (config.tls_cert is None) != (config.tls_key is None):
        raise ValueError("give both --tls-cert and --tls-key, or neither")
    auth = Authenticator.from_file(config.auth)
    store = open_store(config.db)   # SQLite file, or postgresql://... (pgstore)
    core = ServiceCore(twin, store, limits=config.limits, twin_ref=twin_ref,
                       zone_rules=config.zone_rules, population=config.population)
    if config.warm_up:
        core.warm_up()
    if config.plan_processes > 0:     # fork now: before the gRPC server and its threads
        core.start_plan_pool(config.plan_processes)
    executor = ThreadPoolExecutor(max_workers=config.workers,
                                  thread_name_prefix="skytwin-plan")
    # cheap calls (get, list, cancel, zones, grid codes) get their own small pool so that
    # they never queue behind route planning (a load-test finding)
    fast = ThreadPoolExecutor(max_workers=2, thread_name_prefix="skytwin-fast")
    server = grpc.aio.server(
        interceptors=[ErrorInterceptor(), AuthInterceptor(auth)],
        options=[("grpc.so_reuseport", 0),
                 ("grpc.max_receive_message_length", config.max_message_bytes),
                 ("grpc.max_send_message_length", 4 * config.max_message_bytes)])
    # heavy reads (blocked-code queries, ED-269 import/export) get one thread of their
    # own, so that they delay neither bookings nor the cheap calls
    heavy = ThreadPoolExecutor(max_workers=1, thread_name_prefix="skytwin-query")
    from skytwin.server.services._base import make_gates
    gates = make_gates(core.limits, config.workers, 2)   # shared by every servicer
    kw = {"gates": gates, "query_executor": heavy}
    airspace_pb2_grpc.add_AirspaceServiceServicer_to_server(
        AirspaceServicer(core, executor, fast, **kw), server)
    zones_pb2_grpc.add_ZoneServiceServicer_to_server(
        ZoneServicer(core, executor, fast, **kw), server)
    flights_pb2_grpc.add_FlightServiceServicer_to_server(
        FlightServicer(core, executor, fast, **kw), server)
    changes_pb2_grpc.add_ChangeServiceServicer_to_server(
        ChangeServicer(core, executor, fast, **kw), server)
    # live operations (issue 11): telemetry, conformance sweep, tactical resolution
    from skytwin.server.live import LiveHub
    hub = LiveHub(core, start=config.live)
    live_pb2_grpc.add_LiveServiceServicer_to_server(
        LiveServicer(core, hub, executor, fast, **kw), server)
    health = HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    reflection.enable_server_reflection(
        (*SERVICE_NAMES, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
         reflection.SERVICE_NAME), server)
    address = f"{config.host}:{config.port}"
    if config.tls_cert is not None:
        port = server.add_secure_port(address, server_credentials(config.tls_cert,
                                                                  config.tls_key))
    else:
        port = server.add_insecure_port(address)
    if port == 0:
        raise OSError(f"could not bind {address} (in use?)")
    server.skytwin_core = core
    server.skytwin_hub = hub
    server.skytwin_health = health
    server.skytwin_executor = executor
    server.skytwin_fast_executor = fast
    server.skytwin_query_executor = heavy
    server.skytwin_gates = gates
    return server, port


async def start(server) -> None:
    """Start a built server and mark every service SERVING."""
    await server.start()
    for name in ("", *SERVICE_NAMES):
        await server.skytwin_health.set(name, health_pb2.HealthCheckResponse.SERVING)


async def stop(server, grace_s: float = 5.0) -> None:
    """Stop gracefully, then release the pool and the store."""
    await server.skytwin_health.enter_graceful_shutdown()
    await server.stop(grace_s)
    server.skytwin_executor.shutdown(wait=True, cancel_futures=True)
    server.skytwin_fast_executor.shutdown(wait=True, cancel_futures=True)
    server.skytwin_query_executor.shutdown(wait=True, cancel_futures=True)
    server.skytwin_hub.close()
    server.skytwin_core.close()


async def serve(config: ServerConfig, on_ready=None) -> None:
    """Run until SIGINT or SIGTERM; ``on_ready(port)`` is called once serving."""
    server, port = build_server(config)
    await start(server)
    if on_ready is not None:
        on_ready(port)
    done = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, done.set)
        except (NotImplementedError, RuntimeError):  # not the main thread
            pass
    await done.wait()
    log.info("stopping")
    await stop(server, config.grace_s)
