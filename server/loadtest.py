"""Fleet load test of a running SkyTwin server (``skytwin loadtest``).

Design
------
The load test is an ordinary client: everything it knows comes through the public API
(``skytwin.v1``), so it also checks what a real operator or regulator could check.

* **Loopback by default, bounded.** A load test books and cancels hundreds of flights
  and closes airspace with a no-fly zone on the server it targets, so
  :func:`check_loopback` refuses every target that is not 127.0.0.0/8, ``localhost`` or
  ``::1`` (no name resolution: a name other than ``localhost`` is refused), before any
  connection is opened, unless the caller says ``allow_remote`` (``--allow-remote``):
  then the command line prints a warning and the run goes ahead. A run stops issuing
  requests after ``duration_s`` or ``max_requests`` calls, whichever comes first; calls
  still in flight get ``rpc_timeout_s`` to finish and are then cancelled; the Watch
  streams are cancelled and every channel is closed.
* **Traffic.** ``concurrency`` asyncio workers (``grpc.aio``, a few shared channels)
  take the ``drones`` simulated drones in turn. Drone ``i`` belongs to simulated
  operator ``i % operators`` (each simulated operator uses one operator token of the
  token file, round robin when there are fewer tokens than operators) and is based at
  hub ``i % hubs``. A delivery is: PlanRoute (preview) from the hub to a random point of
  the twin, departing within ``spread_s`` from now; then SubmitFlight with a fresh
  request id, booking the previewed plan by its ``plan_id`` (with the same ``route``, so
  that an expired handle falls back to planning; ``book_plan=False`` sends the route
  only, the behaviour before issue 14, which plans every delivery twice) (sometimes sent twice at once: a retry racing its original); sometimes a
  sequential retry of the same request id (must be ``replayed`` with the same flight
  id); sometimes a cancellation of the flight just booked. A regulator creates one
  no-fly circle at half time on a hub-to-destination corridor (CreateZone), and
  watchers (a regulator and one per operator token, up to ``watchers``) count the
  events of their Watch stream and note when the zone's event arrives.
* **Statuses.** ``FAILED_PRECONDITION`` is the service saying "no route" or "no
  conflict-free slot": expected, counted, not a failure. Every other non-OK status of a
  load-phase call (``INTERNAL``, ``UNAVAILABLE``, ``DEADLINE_EXCEEDED``, ...) is a
  failure.
* **Checks after the run, through the API.** ListFlights (as regulator, paged) and
  ListZones, then independent local checks: :func:`planner.verify.verify` on every
  accepted trajectory (waypoints converted back to a local metric frame) with the
  default :class:`planner.conflicts.Separation`, and, for each zone and each accepted
  flight that overlaps its active window, :func:`airspace.zones.segment_intersects` on
  every segment. A flight crossing the zone created by this run is legitimate only when
  the CreateZone response listed it as affected (accepted before the zone); such flights
  are reported apart, not as failures. Derived zones (issue 13) count like any other,
  except those of category ``warning`` and disabled ones, which routes may cross. Also: idempotency (one flight per request id,
  retries replayed with the same id), cancellations visible, every booking seen by the
  regulator's watcher, the zone event seen by every watcher.
* **Clean-up.** After the checks the run removes what it created: every flight it
  booked that is still accepted is cancelled (with the token of the operator that
  booked it) and its zone is deleted (as regulator); the report's ``cleanup`` section
  counts both and the run fails when the clean-up does. Cancelled flights stay in the
  store as cancelled records, as any operator's would. With ``keep`` (``--keep``) the
  flights and the zone are left in place for inspection; everything the run created is
  named after its ``run_id`` (request ids ``RUN_ID-d<drone>-<trip>``, zone
  ``RUN_ID-zone``), and the report says how to remove it (``skytwin client cancel
  FLIGHT_ID`` as the booking operator, ``skytwin client zones delete RUN_ID-zone`` as a
  regulator).

What the API does not expose, and how the checks cope (documented limits):

* the twin's frame centre: the checks use a transverse Mercator frame centred on the
  twin's WGS84 bounds (:meth:`GetTwinInfo`); separations and zone distances agree with
  the service's own frame to ~1e-8 relative inside a few kilometres;
* the separation minima: the checks use the defaults of
  :class:`planner.conflicts.Separation` (the service's too);
* the terrain between waypoints: AGL zone limits are evaluated with the ground range seen
  under all waypoints (``alt_amsl_m - alt_agl_m``), which is conservative; a crossing
  found only that way, and not with the ground under the segment's own ends, is reported
  as ``uncertain_agl`` rather than as a failure.
"""

from __future__ import annotations

import asyncio
import ipaddress
import math
import random
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

__all__ = [
    "EXPECTED_CODES",
    "LoadConfig",
    "LoopbackError",
    "REMOTE_WARNING",
    "check_loopback",
    "format_report",
    "run_loadtest",
    "run_trivial",
]

#: Non-OK statuses that are answers, not failures, during the load phase.
EXPECTED_CODES = frozenset({"FAILED_PRECONDITION"})
_LOOPBACK_MSG = ("refusing to load-test {target!r}: it is not a loopback address "
                 "(127.0.0.0/8, localhost, ::1), and a load test books hundreds of flights "
                 "and closes airspace on the server it targets; to load-test a SkyTwin "
                 "server you operate elsewhere, pass --allow-remote")

#: Printed by the command line when ``--allow-remote`` lets a run go to another host.
REMOTE_WARNING = ("warning: load-testing {target}, which is not on this machine: the run "
                  "books and cancels real flights and closes airspace with a no-fly zone "
                  "there while it runs; never point it at a server that carries live "
                  "traffic")


class LoopbackError(ValueError):
    """The target is not a loopback address (or not ``HOST:PORT``)."""


def check_loopback(target: str, allow_remote: bool = False) -> str:
    """Validate a ``HOST:PORT`` load-test target; returns it for ``grpc.aio``.

    Parameters
    ----------
    target : str
        ``127.0.0.1:50051``, ``localhost:50051``, ``[::1]:50051`` ...
    allow_remote : bool
        Accept any host (the form ``HOST:PORT`` is still checked).

    Raises
    ------
    LoopbackError
        When the host is not loopback (names other than ``localhost`` are refused
        without being resolved) and ``allow_remote`` is false, or the port is missing
        or out of range.

    Examples
    --------
    >>> check_loopback("127.0.0.2:50051")
    '127.0.0.2:50051'
    >>> check_loopback("[::1]:8080")
    '[::1]:8080'
    >>> check_loopback("10.0.0.1:50051", allow_remote=True)
    '10.0.0.1:50051'
    >>> check_loopback("10.0.0.1:50051")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    skytwin.server.loadtest.LoopbackError: refusing to load-test '10.0.0.1:50051': it is not a loopback address ...
    """
    text = str(target).strip()
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
        if not sep:
            raise LoopbackError(f"target {target!r}: unclosed '[' (use [::1]:PORT)")
    else:
        host, _, port = text.rpartition(":")
        if ":" in host:
            raise LoopbackError(f"target {target!r}: write IPv6 hosts as [::1]:PORT")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise LoopbackError(f"target {target!r} must be HOST:PORT with a port in "
                            "1..65535, e.g. 127.0.0.1:50051")
    if host.lower() != "localhost" and not allow_remote:
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            raise LoopbackError(_LOOPBACK_MSG.format(target=target)) from None
        mapped = getattr(ip, "ipv4_mapped", None)
        if not (ip.is_loopback or (mapped is not None and mapped.is_loopback)):
            raise LoopbackError(_LOOPBACK_MSG.format(target=target))
    return text


@dataclass
class LoadConfig:
    """One load-test run (the ``skytwin loadtest`` flags map 1:1).

    Attributes
    ----------
    target : str
        ``HOST:PORT`` of the server, loopback only; several instances of one service
        (sharing a PostgreSQL database) as ``HOST:PORT,HOST:PORT``: the channels are
        spread over them, so workers alternate between instances, and a regulator
        watches on every instance (each must see every booking).
    drones, concurrency, duration_s :
        Simulated drones, concurrent client workers, length of the load phase [s].
    operators : int or None
        Simulated operators (None: one per operator token in the token file).
    tokens : Path
        TOML token file (:mod:`server.auth` format); needs a regulator and an operator.
    seed : int
        Seeds every random choice (destinations, departures, retries, cancellations).
    max_requests : int
        Hard cap on load-phase calls.
    hubs : int
        Delivery hubs (found by PlanRoute previews at start-up), 1..200: random points of
        the twin at least 150 m apart from which a PlanRoute preview succeeds. Every
        delivery takes off from a hub, so few hubs bound the bookings a run can get
        (each hub's take-off slots within ``spread_s`` are a capacity of their own: see
        benchmarks/RESULTS.md, scale part 8); a city with ~100 bookings/s has many
        vertiports.
    spread_s : float
        Departures are drawn uniformly in ``[now + 60 s, now + 60 s + spread_s]``.
    p_retry, p_dup, p_cancel : float
        Per booking: probability of a sequential retry of the same request id, of
        sending the first submit twice at once, of cancelling the flight.
    watchers : int
        Watch streams (the first is the regulator's).
    rpc_timeout_s : float
        Deadline of every call; also the grace given to calls in flight at the end.
    zone_radius_m : float
        Radius of the no-fly circle created at half time.
    allow_remote : bool
        Accept a target that is not a loopback address.
    keep : bool
        Leave the run's flights and zone in the server (default: cancel and delete them
        after the checks).
    book_plan : bool
        Book the PlanRoute preview by its ``plan_id`` (default); False: SubmitFlight
        with the route only (the server plans again).
    """

    target: str
    drones: int = 100
    concurrency: int = 8
    duration_s: float = 10.0
    operators: int | None = None
    tokens: Path | None = None
    seed: int = 0
    max_requests: int = 200_000
    hubs: int = 3
    spread_s: float = 3600.0
    p_retry: float = 0.1
    p_dup: float = 0.05
    p_cancel: float = 0.1
    watchers: int = 3
    rpc_timeout_s: float = 30.0
    zone_radius_m: float = 60.0
    allow_remote: bool = False
    keep: bool = False
    book_plan: bool = True

    def validate(self) -> None:
        """Raise ValueError naming the first out-of-range field."""
        for t in self.target.split(","):
            check_loopback(t, self.allow_remote)
        lim = {"drones": (1, 100_000), "concurrency": (1, 1024),
               "duration_s": (0.5, 3600.0), "max_requests": (1, 10_000_000),
               "hubs": (1, 200), "watchers": (1, 64), "rpc_timeout_s": (0.1, 600.0)}
        for name, (lo, hi) in lim.items():
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and lo <= v <= hi):
                raise ValueError(f"{name} must be within {lo}..{hi}, got {v!r}")
        if self.operators is not None and not 1 <= self.operators <= 10_000:
            raise ValueError(f"operators must be within 1..10000, got {self.operators!r}")
        for name in ("p_retry", "p_dup", "p_cancel"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be within 0..1, got {getattr(self, name)!r}")


# ------------------------------------------------------------------------------ stats
class _Stats:
    """Latency and status of every call, per RPC."""

    def __init__(self):
        self.lat_s: dict[str, list] = defaultdict(list)      # OK calls
        self.lat_all_s: dict[str, list] = defaultdict(list)  # every completed call
        self.codes: dict[str, Counter] = defaultdict(Counter)
        self.samples: dict[tuple, list] = defaultdict(list)  # (rpc, code) -> details

    def add(self, rpc: str, dt_s: float, code: str, details: str = "") -> None:
        self.lat_all_s[rpc].append(dt_s)
        self.codes[rpc][code] += 1
        if code == "OK":
            self.lat_s[rpc].append(dt_s)
        elif len(self.samples[(rpc, code)]) < 3:
            self.samples[(rpc, code)].append(details[:200])

    def summary(self, elapsed_s: float) -> dict:
        import numpy as np
        out = {}
        for rpc in sorted(self.codes):
            ok = np.asarray(self.lat_s[rpc]) * 1e3
            alls = np.asarray(self.lat_all_s[rpc]) * 1e3
            n = int(sum(self.codes[rpc].values()))

            def pct(a, q):
                return round(float(np.percentile(a, q)), 3) if a.size else None
            out[rpc] = {
                "calls": n, "ok": int(ok.size),
                "calls_per_s": round(n / elapsed_s, 2) if elapsed_s > 0 else None,
                "ok_per_s": round(ok.size / elapsed_s, 2) if elapsed_s > 0 else None,
                "p50_ms": pct(ok, 50), "p95_ms": pct(ok, 95), "p99_ms": pct(ok, 99),
                "max_ms": pct(ok, 100),
                "all_p50_ms": pct(alls, 50), "all_p99_ms": pct(alls, 99),
                "codes": dict(sorted(self.codes[rpc].items())),
                "error_samples": {c: s for (r, c), s in self.samples.items() if r == rpc},
            }
        return out

    def errors_by_code(self) -> dict:
        tot: Counter = Counter()
        for c in self.codes.values():
            tot.update({k: v for k, v in c.items() if k != "OK"})
        return dict(sorted(tot.items()))


def _md(token: str):
    return (("authorization", f"Bearer {token}"),)


def _load_tokens(path):
    from skytwin.server.auth import DEV_TOKENS, load_tokens
    toks = load_tokens(path or DEV_TOKENS)
    ops = sorted((c.operator_id, t) for t, c in toks.items() if c.role == "operator")
    regs = sorted(t for t, c in toks.items() if c.role == "regulator")
    if not ops or not regs:
        raise ValueError(f"token file {path or DEV_TOKENS} needs at least one operator and "
                         "one regulator token")
    return ops, regs[0]


# ----------------------------------------------------------------------------- client
class _Client:
    """Channels, stubs and the instrumented call shared by every worker."""

    def __init__(self, target: str, n_channels: int, timeout_s: float):
        import grpc

        from skytwin.v1 import (
            airspace_pb2_grpc,
            changes_pb2_grpc,
            flights_pb2_grpc,
            zones_pb2_grpc,
        )
        self.grpc = grpc
        self.timeout_s = timeout_s
        targets = target.split(",")      # several instances: channel i -> target i % n
        n_channels = max(n_channels, len(targets))
        self.channels = [grpc.aio.insecure_channel(targets[i % len(targets)])
                         for i in range(n_channels)]
        self.stubs = [{"air": airspace_pb2_grpc.AirspaceServiceStub(c),
                       "zones": zones_pb2_grpc.ZoneServiceStub(c),
                       "flights": flights_pb2_grpc.FlightServiceStub(c),
                       "changes": changes_pb2_grpc.ChangeServiceStub(c)}
                      for c in self.channels]
        self.issued = 0
        self.cap: int | None = None     # refuse calls beyond this many (load phase)
        self.capped = False
        self.inflight: set = set()

    def stub(self, n: int, kind: str):
        return self.stubs[n % len(self.stubs)][kind]

    async def call(self, stats: _Stats, rpc: str, method, req, token: str):
        """``(response or None, code name, details)``; the call is recorded in ``stats``.

        Past the request cap nothing is sent and the code is ``"NOT_SENT"`` (not
        recorded).
        """
        if self.cap is not None and self.issued >= self.cap:
            self.capped = True
            return None, "NOT_SENT", "request cap reached"
        self.issued += 1
        t0 = time.perf_counter()
        call = method(req, metadata=_md(token), timeout=self.timeout_s)
        self.inflight.add(call)
        try:
            resp = await call
            code, details = "OK", ""
        except self.grpc.aio.AioRpcError as exc:
            resp, code, details = None, exc.code().name, exc.details() or ""
        except asyncio.CancelledError:
            stats.add(rpc, time.perf_counter() - t0, "CANCELLED", "cancelled at the end")
            raise
        finally:
            self.inflight.discard(call)
        stats.add(rpc, time.perf_counter() - t0, code, details)
        return resp, code, details

    async def close(self):
        for c in list(self.inflight):
            c.cancel()
        for ch in self.channels:
            await ch.close()


# ------------------------------------------------------------------------------- run
@dataclass
class _Drone:
    index: int
    operator: int
    hub: int
    trips: int = 0


@dataclass
class _Run:
    """Mutable state of one run (what the checks need afterwards)."""

    bookings: dict = field(default_factory=dict)      # flight_id -> (op_id, request_id)
    by_request: dict = field(default_factory=dict)    # (op_id, rid) -> set of flight ids
    fresh: dict = field(default_factory=Counter)      # (op_id, rid) -> replayed=False count
    cancelled: set = field(default_factory=set)
    idempotency_problems: list = field(default_factory=list)
    dup_rejected: list = field(default_factory=list)  # a racing retry refused, original booked
    goals: list = field(default_factory=list)         # (hub, lon, lat) of planned routes
    plan_handles: int = 0                             # submits sent with a plan_id
    replanned: int = 0                                # ... answered replanned=true
    zone: dict = field(default_factory=dict)
    watch: list = field(default_factory=list)


def _ts(t_s: float):
    from skytwin.server.convert import timestamp
    return timestamp(t_s)


async def _find_hubs(client, stats, token, bounds, n_hubs, rng, frame):
    """Hub positions: random points of the twin from which PlanRoute finds a route."""
    from skytwin.v1 import airspace_pb2 as apb
    from skytwin.v1 import flights_pb2 as fpb
    hubs = []
    plan = client.stub(0, "flights").PlanRoute
    for _ in range(60 * n_hubs):
        if len(hubs) >= n_hubs:
            break
        a = _random_point(bounds, rng, frame)
        if any(_dist_m(frame, a, h) < 150.0 for h in hubs):
            continue
        b = _random_point(bounds, rng, frame)
        req = fpb.PlanRouteRequest(route=fpb.RouteRequest(
            start=apb.LonLat(lon_deg=a[0], lat_deg=a[1]),
            goal=apb.LonLat(lon_deg=b[0], lat_deg=b[1])))
        _, code, _ = await client.call(stats, "PlanRoute", plan, req, token)
        if code == "OK":
            hubs.append(a)
    if not hubs:
        raise RuntimeError("found no hub: PlanRoute failed from 60 random points of the twin")
    return hubs     # may be fewer than n_hubs (the report's ``hubs`` lists those found)


def _local_frame(bounds):
    from skytwin.airspace.frame import Frame
    return Frame(0.5 * (bounds.min_lon_deg + bounds.max_lon_deg),
                 0.5 * (bounds.min_lat_deg + bounds.max_lat_deg))


def _random_point(bounds, rng, frame, margin_m=20.0):
    x0, y0 = frame.to_local(bounds.min_lon_deg, bounds.min_lat_deg)
    x1, y1 = frame.to_local(bounds.max_lon_deg, bounds.max_lat_deg)
    x = rng.uniform(x0 + margin_m, x1 - margin_m)
    y = rng.uniform(y0 + margin_m, y1 - margin_m)
    lon, lat = frame.to_wgs84(x, y)
    return (float(lon), float(lat))


def _dist_m(frame, a, b):
    xa, ya = frame.to_local(*a)
    xb, yb = frame.to_local(*b)
    return math.hypot(xa - xb, ya - yb)


class _LoadTest:
    def __init__(self, cfg: LoadConfig):
        cfg.validate()
        self.cfg = cfg
        self.rng = random.Random(cfg.seed)
        self.run_id = f"lt{cfg.seed}-{uuid.uuid4().hex[:8]}"
        self.op_tokens, self.reg_token = _load_tokens(cfg.tokens)
        k = cfg.operators or len(self.op_tokens)
        self.n_operators = k
        self.stats = _Stats()
        self.setup_stats = _Stats()
        self.check_stats = _Stats()
        self.state = _Run()
        self.stop = asyncio.Event()
        self.drones = [_Drone(i, i % k, i % cfg.hubs) for i in range(cfg.drones)]
        self.next_drone = 0

    def op_token(self, operator: int):
        return self.op_tokens[operator % len(self.op_tokens)]

    # ------------------------------------------------------------------- workers
    async def delivery(self, w: int, drone: _Drone):
        from google.protobuf.duration_pb2 import Duration

        from skytwin.v1 import airspace_pb2 as apb
        from skytwin.v1 import flights_pb2 as fpb
        cfg, rng, c = self.cfg, self.rng, self.client
        op_id, token = self.op_token(drone.operator)
        hub = self.hubs[drone.hub % len(self.hubs)]
        goal = _random_point(self.bounds, rng, self.frame)
        dep = time.time() + 60.0 + rng.uniform(0.0, cfg.spread_s)
        route = fpb.RouteRequest(start=apb.LonLat(lon_deg=hub[0], lat_deg=hub[1]),
                                 goal=apb.LonLat(lon_deg=goal[0], lat_deg=goal[1]),
                                 departure_time=_ts(dep), max_delay=Duration(seconds=600))
        flights = c.stub(w, "flights")
        pr, code, _ = await c.call(self.stats, "PlanRoute", flights.PlanRoute,
                                      fpb.PlanRouteRequest(route=route), token)
        if code != "OK" or self.stop.is_set():
            return
        plan_id = pr.plan_id if cfg.book_plan else ""
        self.state.goals.append((drone.hub, goal[0], goal[1]))
        drone.trips += 1
        rid = f"{self.run_id}-d{drone.index}-{drone.trips}"
        key = (op_id, rid)
        req = fpb.SubmitFlightRequest(request_id=rid, route=route, plan_id=plan_id)
        if plan_id:
            self.state.plan_handles += 1
        dup = rng.random() < cfg.p_dup
        retry = rng.random() < cfg.p_retry
        cancel = rng.random() < cfg.p_cancel
        n = 2 if dup else 1
        results = await asyncio.gather(*[
            c.call(self.stats, "SubmitFlight", flights.SubmitFlight, req, token)
            for _ in range(n)])
        results = [r for r in results if r[1] != "NOT_SENT"]
        n = len(results)
        oks = [r for r, code, _ in results if code == "OK"]
        self.state.replanned += sum(bool(r.replanned) for r in oks if not r.replayed)
        for r in oks:
            self._note_booking(key, r)
        if dup and oks and len(oks) < n:
            codes = sorted(code for _, code, _ in results)
            why = next(d for _, cd, d in results if cd != "OK")
            self.state.dup_rejected.append((rid, codes, why[:160]))
        if not oks:
            return
        fid = oks[0].flight.flight_id
        if retry and not self.stop.is_set():
            r, code, _ = await c.call(self.stats, "SubmitFlight", flights.SubmitFlight, req,
                                      token)
            if code == "NOT_SENT":
                pass
            elif code == "OK":
                self._note_booking(key, r)
                if not r.replayed:
                    self.state.idempotency_problems.append(
                        f"{rid}: sequential retry was not replayed")
            else:
                self.state.idempotency_problems.append(
                    f"{rid}: sequential retry of a booked request returned {code}")
        if cancel and not self.stop.is_set():
            r, code, _ = await c.call(self.stats, "CancelFlight", flights.CancelFlight,
                                      fpb.CancelFlightRequest(flight_id=fid), token)
            if code == "OK":
                self.state.cancelled.add(fid)

    def _note_booking(self, key, resp):
        fid = resp.flight.flight_id
        self.state.bookings[fid] = key
        self.state.by_request.setdefault(key, set()).add(fid)
        if not resp.replayed:
            self.state.fresh[key] += 1

    async def worker(self, w: int):
        while not self.stop.is_set():
            if self.client.capped:
                self.stop.set()
                break
            drone = self.drones[self.next_drone % len(self.drones)]
            self.next_drone += 1
            await self.delivery(w, drone)

    # ----------------------------------------------------------------- regulator
    def _zone_centre(self):
        """A point on a hub -> destination corridor, away from every hub."""
        r = self.cfg.zone_radius_m
        cands = list(self.state.goals)
        self.rng.shuffle(cands)
        for hub_i, lon, lat in cands[:200]:
            hx, hy = self.frame.to_local(*self.hubs[hub_i % len(self.hubs)])
            gx, gy = self.frame.to_local(lon, lat)
            if math.hypot(gx - hx, gy - hy) < 4 * r + 100.0:
                continue
            x, y = 0.5 * (hx + gx), 0.5 * (hy + gy)
            if all(math.hypot(x - a, y - b) > r + 60.0
                   for a, b in (self.frame.to_local(*h) for h in self.hubs)):
                lon, lat = self.frame.to_wgs84(x, y)
                return float(lon), float(lat)
        # no suitable corridor yet: halfway from the first hub to the twin's centre
        hx, hy = self.frame.to_local(*self.hubs[0])
        lon, lat = self.frame.to_wgs84(0.5 * hx, 0.5 * hy)
        return float(lon), float(lat)

    async def regulator(self):
        from skytwin.v1 import airspace_pb2 as apb
        from skytwin.v1 import zones_pb2 as zpb
        try:
            await asyncio.wait_for(self.stop.wait(), self.cfg.duration_s / 2)
            return                                   # stopped (request cap) before half time
        except TimeoutError:
            pass
        lon, lat = self._zone_centre()
        zid = f"{self.run_id}-zone"
        agl = apb.ALTITUDE_REFERENCE_AGL
        zone = zpb.Zone(id=zid, name="load test closure", reason="load test: mid-run closure",
                        circle=zpb.Circle(centre=apb.LonLat(lon_deg=lon, lat_deg=lat),
                                          radius_m=self.cfg.zone_radius_m),
                        lower=apb.Altitude(value_m=0.0, reference=agl),
                        upper=apb.Altitude(value_m=500.0, reference=agl))
        t_sent = time.time()
        self.state.zone.update(id=zid, centre=(lon, lat), radius_m=self.cfg.zone_radius_m,
                               sent_s=t_sent)
        resp, code, details = await self.client.call(
            self.stats, "CreateZone", self.client.stub(0, "zones").CreateZone,
            zpb.CreateZoneRequest(zone=zone), self.reg_token)
        self.state.zone.update(code=code, details=details, acked_s=time.time(),
                               affected=sorted(resp.affected_flight_ids) if resp else [])

    # ------------------------------------------------------------------- watchers
    async def watcher(self, n: int, token: str, role: str, ready: asyncio.Event):
        from skytwin.v1 import changes_pb2 as cpb
        rec = {"role": role, "events": Counter(), "accepted_ids": set(), "zone_seen_s": None,
               "end": None}
        self.state.watch.append(rec)
        call = self.client.stub(n, "changes").Watch(cpb.WatchRequest(), metadata=_md(token))
        self.watch_calls.append(call)
        try:
            async for ch in call:
                kind = cpb.ChangeKind.Name(ch.kind)
                rec["events"][kind] += 1
                if ch.kind == cpb.CHANGE_KIND_UNSPECIFIED:
                    ready.set()
                elif ch.kind == cpb.CHANGE_KIND_FLIGHT_ACCEPTED:
                    rec["accepted_ids"].add(ch.flight.flight_id)
                elif (ch.kind == cpb.CHANGE_KIND_ZONE_ADDED and
                      ch.zone.id == self.state.zone.get("id")):
                    rec["zone_seen_s"] = time.time()
            rec["end"] = "OK (server closed the stream)"
        except asyncio.CancelledError:
            rec["end"] = "CANCELLED (by the load test)"
            raise
        except self.client.grpc.aio.AioRpcError as exc:
            code = exc.code().name
            rec["end"] = ("CANCELLED (by the load test)" if code == "CANCELLED"
                          else f"{code}: {exc.details()}")
        finally:
            ready.set()

    # ------------------------------------------------------------------------ run
    async def run(self) -> dict:
        from skytwin.v1 import airspace_pb2 as apb
        cfg = self.cfg
        self.client = _Client(cfg.target, max(1, min(4, cfg.concurrency)), cfg.rpc_timeout_s)
        self.watch_calls = []
        tasks = []
        try:
            try:
                info = await self.client.stub(0, "air").GetTwinInfo(
                    apb.GetTwinInfoRequest(), metadata=_md(self.reg_token),
                    timeout=min(10.0, cfg.rpc_timeout_s), wait_for_ready=True)
            except self.client.grpc.aio.AioRpcError as exc:
                raise ConnectionError(f"cannot reach a SkyTwin server at {cfg.target}: "
                                      f"{exc.code().name}: {exc.details()}") from None
            self.bounds = info.bounds
            self.frame = _local_frame(info.bounds)
            t_hubs = time.perf_counter()
            self.hubs = await _find_hubs(self.client, self.setup_stats,
                                         self.op_token(0)[1], self.bounds, cfg.hubs,
                                         self.rng, self.frame)
            self.hubs_setup_s = time.perf_counter() - t_hubs
            # watchers first, live before the load starts
            n_targets = len(cfg.target.split(","))
            plan = [(self.reg_token, "regulator" if n_targets == 1 else
                     f"regulator @{cfg.target.split(',')[k]}") for k in range(n_targets)]
            plan += [(t, f"operator {o}") for o, t in self.op_tokens]
            readies = []
            for n, (tok, role) in enumerate(plan[:max(cfg.watchers, n_targets)]):
                ev = asyncio.Event()
                readies.append(ev)
                tasks.append(asyncio.create_task(self.watcher(n, tok, role, ev)))
            await asyncio.wait_for(asyncio.gather(*(e.wait() for e in readies)), 10.0)
            self.client.issued = 0
            self.client.cap = cfg.max_requests
            t0 = time.perf_counter()
            workers = [asyncio.create_task(self.worker(w)) for w in range(cfg.concurrency)]
            reg = asyncio.create_task(self.regulator())
            try:
                await asyncio.wait_for(self.stop.wait(), cfg.duration_s)
            except TimeoutError:
                pass
            self.stop.set()
            elapsed_issue = time.perf_counter() - t0
            done, pending = await asyncio.wait([*workers, reg], timeout=cfg.rpc_timeout_s)
            for t in pending:
                t.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            for t in done:
                if t.exception() is not None:
                    raise t.exception()
            elapsed = time.perf_counter() - t0
            self.window_perf_s = (t0, t0 + elapsed)   # the load phase on perf_counter
            self.client.cap = None
            # let the watchers catch up with the last bookings, then cancel them
            mine = set(self.state.bookings)
            regs = [w for w in self.state.watch if w["role"].startswith("regulator")]
            t_end = time.perf_counter() + 5.0
            while (regs and time.perf_counter() < t_end and
                   not all(mine <= w["accepted_ids"] for w in regs)):
                await asyncio.sleep(0.05)
            for call in self.watch_calls:
                call.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            checks = await self.checks()
            checks["cleanup"] = await self.cleanup()
        finally:
            for t in tasks:
                t.cancel()
            await self.client.close()
        return self.report(elapsed, elapsed_issue, checks)

    # -------------------------------------------------------------------- clean-up
    async def cleanup(self) -> dict:
        """Cancel the run's flights that are still accepted and delete its zone."""
        from skytwin.v1 import flights_pb2 as fpb
        from skytwin.v1 import zones_pb2 as zpb
        st = self.state
        live = sorted(set(st.bookings) - st.cancelled)
        zid = st.zone.get("id") if st.zone.get("code") == "OK" else None
        if self.cfg.keep:
            return {"ok": True, "kept_flights": len(live), "kept_zone": zid,
                    "how_to_remove": (f"flights: request ids start with '{self.run_id}-'; "
                                      "skytwin client --token OPERATOR_TOKEN cancel "
                                      "FLIGHT_ID; zone: skytwin client --token "
                                      f"REGULATOR_TOKEN zones delete {zid}") if zid else
                    (f"flights: request ids start with '{self.run_id}-'; skytwin client "
                     "--token OPERATOR_TOKEN cancel FLIGHT_ID")}
        tokens = dict(self.op_tokens)
        sem = asyncio.Semaphore(max(1, self.cfg.concurrency))
        failed, done = [], set()

        async def cancel(fid):
            token = tokens.get(st.bookings[fid][0], self.reg_token)
            async with sem:
                _, code, details = await self.client.call(
                    self.check_stats, "CancelFlight", self.client.stub(0, "flights")
                    .CancelFlight, fpb.CancelFlightRequest(flight_id=fid), token)
            if code == "OK":
                done.add(fid)
            else:
                failed.append(f"{fid}: {code}: {details}"[:200])
        await asyncio.gather(*(cancel(f) for f in live))
        zone_deleted = None
        if zid:
            _, code, details = await self.client.call(
                self.check_stats, "DeleteZone", self.client.stub(0, "zones").DeleteZone,
                zpb.DeleteZoneRequest(zone_id=zid), self.reg_token)
            zone_deleted = code == "OK"
            if not zone_deleted:
                failed.append(f"zone {zid}: {code}: {details}"[:200])
        return {"ok": not failed, "flights_cancelled": len(done),
                "zone_deleted": zid if zone_deleted else None, "failed": failed[:20]}

    # --------------------------------------------------------------------- checks
    async def _list_flights(self, status):
        from skytwin.v1 import flights_pb2 as fpb
        out, token = [], ""
        stub = self.client.stub(0, "flights")
        for _ in range(100_000):
            resp, code, details = await self.client.call(
                self.check_stats, "ListFlights", stub.ListFlights,
                fpb.ListFlightsRequest(status=status, page_size=1000, page_token=token),
                self.reg_token)
            if code != "OK":
                raise RuntimeError(f"ListFlights failed: {code}: {details}")
            out.extend(resp.flights)
            token = resp.next_page_token
            if not token:
                return out
        raise RuntimeError("ListFlights: more than 100000 pages")

    async def checks(self) -> dict:
        from skytwin.v1 import flights_pb2 as fpb
        from skytwin.v1 import zones_pb2 as zpb
        accepted = await self._list_flights(fpb.FLIGHT_STATUS_ACCEPTED)
        cancelled = await self._list_flights(fpb.FLIGHT_STATUS_CANCELLED)
        resp, code, details = await self.client.call(
            self.check_stats, "ListZones", self.client.stub(0, "zones").ListZones,
            zpb.ListZonesRequest(), self.reg_token)
        if code != "OK":
            raise RuntimeError(f"ListZones failed: {code}: {details}")
        zones = list(resp.zones)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, self._local_checks, accepted, cancelled,
                                          zones)

    def _local_checks(self, accepted, cancelled, zones) -> dict:
        import numpy as np

        from skytwin.airspace.zones import LocalZone, segment_intersects
        from skytwin.planner.conflicts import Separation
        from skytwin.planner.trajectory import Trajectory
        from skytwin.planner.verify import verify
        from skytwin.server.convert import seconds, zone_from_proto
        st = self.state
        checks: dict = {}
        frame = self.frame
        # ---- trajectories back in a local frame
        trajs, ground = {}, {}
        for f in accepted:
            wp = f.route.waypoints
            lon = np.array([w.position.lon_deg for w in wp])
            lat = np.array([w.position.lat_deg for w in wp])
            x, y = frame.to_local(lon, lat)
            z = np.array([w.alt_amsl_m for w in wp])
            t = np.array([seconds(w.time) for w in wp])
            trajs[f.flight_id] = Trajectory(f.flight_id, np.column_stack([x, y, z]), t)
            ground[f.flight_id] = z - np.array([w.alt_agl_m for w in wp])
        all_g = np.concatenate(list(ground.values())) if ground else np.zeros(1)
        g_all = (float(all_g.min()), float(all_g.max()))
        # ---- 1. mutual separation (independent verifier)
        t0 = time.perf_counter()
        rep = verify(list(trajs.values()), Separation())
        checks["conflict_free"] = {
            "ok": not rep.residual_conflicts, "flights": len(trajs),
            "screened_pairs": rep.screened_pairs,
            "conflicts": [f"{c.flight_a} x {c.flight_b} near t={c.near_t_s:.0f}"
                          for c in rep.residual_conflicts[:20]],
            "n_conflicts": len(rep.residual_conflicts),
            "check_s": round(time.perf_counter() - t0, 3)}
        # ---- 2. zones
        t0 = time.perf_counter()
        ours = st.zone.get("id")
        affected = set(st.zone.get("affected", []))
        bad, before, uncertain, other_old = [], [], [], []
        crossing_ours = set()
        run_ids = set(st.bookings)
        for zp in zones:
            if zp.HasField("derived") and (not zp.derived.enabled or
                                           zp.derived.category == "warning"):
                continue    # a derived warning zone (or a disabled one) is not no-fly
            z = zone_from_proto(zp)
            lz = LocalZone(z, frame)
            bx0, by0, bx1, by1 = lz.bounds_m
            for fid, tr in trajs.items():
                if not z.active_during(tr.t_start_s, tr.t_end_s):
                    continue
                p = tr.xyz_m
                if (p[:, 0].max() < bx0 or p[:, 0].min() > bx1 or p[:, 1].max() < by0
                        or p[:, 1].min() > by1):
                    continue
                hit_cons = hit_ends = False
                g = ground[fid]
                for s in range(len(p) - 1):
                    if segment_intersects(lz, p[s], p[s + 1], ground_m=lambda *_: g_all):
                        hit_cons = True
                        pair = (float(min(g[s], g[s + 1])), float(max(g[s], g[s + 1])))
                        if segment_intersects(lz, p[s], p[s + 1],
                                              ground_m=lambda *_, pr=pair: pr):
                            hit_ends = True
                            break
                if not hit_cons:
                    continue
                item = f"{fid} crosses zone {z.id}"
                if not hit_ends:
                    uncertain.append(item)
                elif z.id == ours:
                    crossing_ours.add(fid)
                    (before if fid in affected else bad).append(item)
                elif fid in run_ids:
                    bad.append(item + " (booked during this run)")
                else:
                    other_old.append(item)
        checks["zones_clear"] = {
            "ok": not bad, "zones": len(zones), "violations": bad[:20],
            "n_violations": len(bad),
            "accepted_before_the_zone": len(before),
            "uncertain_agl": uncertain[:20],
            "older_flights_in_older_zones": other_old[:20],
            "affected_listed_not_crossing": len(affected - crossing_ours),
            "check_s": round(time.perf_counter() - t0, 3)}
        # ---- 3. idempotency: one flight per (operator, request id)
        probs = list(st.idempotency_problems)
        for key, fids in st.by_request.items():
            if len(fids) > 1:
                probs.append(f"{key[1]}: {len(fids)} different flights {sorted(fids)}")
            if st.fresh[key] > 1:
                probs.append(f"{key[1]}: {st.fresh[key]} responses with replayed=false")
        seen: Counter = Counter((f.operator_id, f.request_id) for f in (*accepted, *cancelled)
                                if f.request_id.startswith(self.run_id))
        probs += [f"{k[1]}: stored {n} times" for k, n in seen.items() if n > 1]
        # a retry racing its original may be refused (FAILED_PRECONDITION) while the
        # original is booked: nothing is booked twice, so it is reported, not failed
        checks["idempotent"] = {"ok": not probs, "requests": len(st.by_request),
                                "problems": probs[:20], "n_problems": len(probs),
                                "racing_retry_refused": len(st.dup_rejected)}
        # ---- 4. bookings and cancellations visible through the API
        acc_ids = {f.flight_id for f in accepted}
        can_ids = {f.flight_id for f in cancelled}
        lost = sorted(set(st.bookings) - st.cancelled - acc_ids)
        not_cancelled = sorted(st.cancelled - can_ids)
        checks["bookings_listed"] = {
            "ok": not lost and not not_cancelled, "booked": len(st.bookings),
            "cancelled": len(st.cancelled), "missing_accepted": lost[:20],
            "missing_cancelled": not_cancelled[:20]}
        # ---- 5. watch streams
        zone_ok = st.zone.get("code") == "OK"
        regs = [w for w in st.watch if w["role"].startswith("regulator")]
        missing = sorted(set().union(*(set(st.bookings) - w["accepted_ids"] for w in regs))) \
            if regs else []
        not_seen = [w["role"] for w in st.watch if zone_ok and w["zone_seen_s"] is None]
        bad_end = [f"{w['role']}: {w['end']}" for w in st.watch
                   if w["end"] is None or not w["end"].startswith("CANCELLED")]
        checks["watch"] = {
            "ok": bool(st.watch) and not missing and not not_seen and not bad_end,
            "zone_event_missing_for": not_seen, "bookings_not_seen_by_regulator":
            missing[:20], "n_bookings_not_seen": len(missing), "stream_errors": bad_end}
        # ---- 6. the zone itself
        checks["zone_created"] = {
            "ok": zone_ok or (self.client.capped and st.zone.get("code") in (None, "NOT_SENT")),
            "code": st.zone.get("code"), "details": st.zone.get("details", "")}
        return checks

    # --------------------------------------------------------------------- report
    def report(self, elapsed_s, issue_s, checks) -> dict:
        st, cfg = self.state, self.cfg
        rpcs = self.stats.summary(elapsed_s)
        errors = self.stats.errors_by_code()
        failures = {k: v for k, v in errors.items() if k not in EXPECTED_CODES}
        checks["no_failure_errors"] = {"ok": not failures, "failures": failures}
        zone = dict(st.zone)
        if zone.get("acked_s"):
            seen = [w["zone_seen_s"] for w in st.watch if w["zone_seen_s"]]
            zone["create_ms"] = round((zone["acked_s"] - zone["sent_s"]) * 1e3, 2)
            if seen:
                zone["watch_delay_ms_max"] = round((max(seen) - zone["sent_s"]) * 1e3, 2)
            zone["affected_count"] = len(zone.get("affected", []))
            zone["affected"] = zone.get("affected", [])[:20]
        for k in ("sent_s", "acked_s"):
            zone.pop(k, None)
        return {
            "config": {k: (str(v) if isinstance(v, Path) else v)
                       for k, v in asdict(cfg).items()},
            "run_id": self.run_id, "operators": self.n_operators,
            "operator_tokens": len(self.op_tokens), "hubs": self.hubs,
            "hubs_setup_s": round(getattr(self, "hubs_setup_s", 0.0), 3),
            "elapsed_s": round(elapsed_s, 3), "issue_s": round(issue_s, 3),
            "window_perf_s": getattr(self, "window_perf_s", None),
            "stopped_by_request_cap": self.client.capped,
            "requests": int(sum(sum(c.values()) for c in self.stats.codes.values())),
            "rpcs": rpcs, "errors_by_code": errors,
            "expected_errors": {k: v for k, v in errors.items() if k in EXPECTED_CODES},
            "failures": failures,
            "flights": {"booked": len(st.bookings), "cancelled": len(st.cancelled),
                        "racing_retry_refused": len(st.dup_rejected),
                        "racing_retry_refused_samples": st.dup_rejected[:5],
                        "booked_by_plan_id": st.plan_handles,
                        "replanned": st.replanned},
            "zone": zone,
            "watch": [{"role": w["role"], "events": dict(w["events"]),
                       "zone_seen": w["zone_seen_s"] is not None, "end": w["end"]}
                      for w in st.watch],
            "setup_rpcs": self.setup_stats.summary(1.0),
            "check_rpcs": self.check_stats.summary(1.0),
            "checks": checks,
            "ok": all(c["ok"] for c in checks.values()),
        }


def run_loadtest(cfg: LoadConfig) -> dict:
    """Run one load test (blocking) and return its report (see :func:`format_report`).

    Raises
    ------
    LoopbackError
        Non-loopback target (nothing is sent).
    ValueError
        A configuration field out of range, or a token file without an operator and a
        regulator.
    ConnectionError
        No server answers at the target within 10 s.
    """
    cfg.validate()
    return asyncio.run(_LoadTest(cfg).run())


# ---------------------------------------------------------------------------- trivial
async def _trivial(target, concurrency, duration_s, token, rpc, max_requests, timeout_s):
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    from skytwin.v1 import airspace_pb2 as apb
    client = _Client(target, max(1, min(4, concurrency)), timeout_s)
    stats = _Stats()
    stop = asyncio.Event()
    if rpc == "Check":
        stubs = [health_pb2_grpc.HealthStub(c) for c in client.channels]
        req = health_pb2.HealthCheckRequest()
        methods = [s.Check for s in stubs]
    else:
        req = apb.GetTwinInfoRequest()
        methods = [client.stub(n, "air").GetTwinInfo for n in range(len(client.channels))]

    async def worker(w):
        m = methods[w % len(methods)]
        while not stop.is_set() and client.issued < max_requests:
            await client.call(stats, rpc, m, req, token)

    try:
        await methods[0](req, metadata=_md(token), timeout=10.0, wait_for_ready=True)
        t0 = time.perf_counter()
        ws = [asyncio.create_task(worker(w)) for w in range(concurrency)]
        try:
            await asyncio.wait_for(asyncio.gather(*ws), duration_s)
        except TimeoutError:
            pass
        stop.set()
        await asyncio.wait(ws, timeout=timeout_s)
        elapsed = time.perf_counter() - t0
    finally:
        await client.close()
    out = stats.summary(elapsed)[rpc]
    out["elapsed_s"] = round(elapsed, 3)
    return out


def run_trivial(target: str, concurrency: int, duration_s: float, token: str | None = None,
                rpc: str = "GetTwinInfo", max_requests: int = 2_000_000,
                timeout_s: float = 30.0) -> dict:
    """Rate of a trivial RPC driven by the load test's own client machinery.

    ``rpc`` is ``"GetTwinInfo"`` (authenticated, served on the event loop) or
    ``"Check"`` (gRPC health, no token). Same channels, workers and instrumentation as
    :func:`run_loadtest`, so the ratio of the two is the share of the transport's
    ceiling the service keeps. Returns the per-RPC summary (``ok_per_s``, ``p50_ms``,
    ``p99_ms`` ...).
    """
    check_loopback(target)
    if rpc not in ("GetTwinInfo", "Check"):
        raise ValueError(f"rpc must be 'GetTwinInfo' or 'Check', got {rpc!r}")
    if token is None:
        token = _load_tokens(None)[1]
    return asyncio.run(_trivial(target, int(concurrency), float(duration_s), token, rpc,
                                max_requests, timeout_s))


# ----------------------------------------------------------------------------- report
def format_report(rep: dict) -> str:
    """Human-readable report (what ``skytwin loadtest`` prints without ``--json``)."""
    c = rep["config"]
    lines = [(f"load test {rep['run_id']} on {c['target']}: {c['drones']} drones, "
              f"{rep['operators']} operators ({rep['operator_tokens']} tokens), "
              f"{len(rep['hubs'])} hubs, concurrency {c['concurrency']}, "
              f"{rep['elapsed_s']:.1f} s, {rep['requests']} requests"), "",
             (f"{'rpc':<14}{'calls':>8}{'calls/s':>9}{'ok':>8}{'ok/s':>9}{'p50 ms':>9}"
              f"{'p95 ms':>9}{'p99 ms':>9}  statuses"),
             "(latency percentiles of the OK calls)"]

    def f(v):
        return "-" if v is None else f"{v:.1f}"
    for name, s in rep["rpcs"].items():
        codes = ", ".join(f"{k} {v}" for k, v in s["codes"].items())
        lines.append(f"{name:<14}{s['calls']:>8}{f(s['calls_per_s']):>9}{s['ok']:>8}"
                     f"{f(s['ok_per_s']):>9}"
                     f"{f(s['p50_ms']):>9}{f(s['p95_ms']):>9}{f(s['p99_ms']):>9}  {codes}")
    lines.append("")
    lines.append("errors by code: " + (", ".join(f"{k} {v}" for k, v in
                                                 rep["errors_by_code"].items()) or "none")
                 + f"  (expected: {', '.join(sorted(EXPECTED_CODES))})")
    fl = rep["flights"]
    lines.append(f"flights: {fl['booked']} booked, {fl['cancelled']} cancelled, "
                 f"{fl['racing_retry_refused']} racing retries refused")
    z = rep["zone"]
    if z:
        lines.append(f"zone {z.get('id')}: {z.get('code')}, {z.get('affected_count', 0)} "
                     f"flights affected, watch delay {z.get('watch_delay_ms_max', '-')} ms")
    for w in rep["watch"]:
        ev = ", ".join(f"{k} {v}" for k, v in sorted(w["events"].items()))
        lines.append(f"watch ({w['role']}): {ev}; zone event "
                     f"{'seen' if w['zone_seen'] else 'NOT seen'}")
    lines.append("")
    for name, ck in rep["checks"].items():
        extra = {k: v for k, v in ck.items() if k != "ok" and v not in ([], {}, None, "")}
        lines.append(f"check {name:<20} {'PASS' if ck['ok'] else 'FAIL'}  {extra}")
    lines.append("")
    lines.append("RESULT: " + ("PASS" if rep["ok"] else "FAIL"))
    return "\n".join(lines)
