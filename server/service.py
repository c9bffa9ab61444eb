"""The service core: booking, zones and the change log, with no transport in sight.

Design
------
:class:`ServiceCore` is plain Python (no ``grpc`` import): the gRPC servicers in
:mod:`server.services` translate messages with :mod:`server.convert` and call it from a
thread pool; tests and a future REST front end can call it directly. It holds

* the twin (read-only, shared), a :class:`~airspace.zones.ZoneLayer` (thread-safe) and
  one :class:`~planner.exact.ExactChecker` shared by a pool of planners: one
  :class:`~planner.route.Planner` per worker thread (``threading.local``), because a
  planner owns its reusable search workspace and is not thread-safe;
* the :class:`~server.store.Store` (SQLite, WAL) and an
  :class:`~planner.deconflict.AcceptedIndex` of every accepted trajectory, rebuilt from
  ``store.accepted_flights(t_from_s=now)`` at start-up (flights that have landed cannot
  conflict with new bookings, which depart now or later), so that a restart after
  SIGKILL deconflicts against everything acknowledged before it;
* the booking critical section. Planning (the slow part) runs outside it, in parallel
  (threads, or worker processes: :mod:`server.workers`); the short critical section
  "place against the accepted set -> re-check -> reserve in the index" holds the locks
  of the space-time partitions the flight could occupy (:mod:`server.partitions`:
  500 m tiles x 10 min buckets, grown by the separation and the delay budget), so two
  submits that could conflict can never take the same slot while bookings elsewhere
  in space or time do not wait for each other; zone changes take ``_book`` (the
  partitions' gate) exclusively. Persisting
  (the fsync) happens after the lock is released, so concurrent bookings share the
  store's group commits; the flight is acknowledged only after the store returned, and
  a reservation whose write failed is released. A retried ``request_id`` is looked up
  inside the lock, and the store's (operator, request id) uniqueness settles a race
  between two concurrent retries (the loser releases its reservation and returns the
  winner's flight): never booked twice;
* the change log: a bounded in-memory ring of :class:`Change` records (zone added,
  updated, removed; flight accepted, cancelled) with sequence numbers, and a list of
  subscriber callbacks (the Watch stream registers one). The ring does not survive a
  restart (sequence numbers restart at 1); durable state is the store's business.

Safety net. Every flight is re-checked before it is persisted, by code paths independent
of the planner: :class:`planner.validate.RouteValidator` (buildings with clearance,
vertical take-off and landing, speeds, every zone active while it flies) and
:func:`planner.verify.verify` against the accepted flights near it in space and time
(residual conflicts involving the new flight). Nothing that fails is accepted.

Delays and higher layers. :func:`planner.deconflict.place` takes, in order, the earliest
departure delay at which the flight fits in its own layer or one or two layers (10 m
each) higher (``Trajectory.shifted`` re-times take-off and landing so the climb and
descent speeds are kept). Only upward shifts are offered: a cruise that clears every
roof + clearance still clears it higher up, whereas a lower one may not. The validator
still re-checks the shifted flight (zones above, the AGL ceiling), and a refused layer
choice falls back to delays only. ``layer_shifts=(0,)`` gives delays only.

Batches. The batch is planned, then resolved among itself with CP-SAT
(:func:`planner.deconflict.deconflict`, departure delays only, as above); accepted flights stay fixed: each resolved
trajectory is then placed with :func:`planner.deconflict.place` against the accepted
index (which by then holds the batch members already placed), in order of resolved
departure, with the remaining delay budget. Without interference from accepted flights
this keeps the CP-SAT plan exactly (delay 0 is the earliest option); otherwise it only
adds delay. All flights are checked, then persisted in one transaction
(``store.add_flights``): all or nothing. Fair booking (issue 14): the placement runs
in chunks of :data:`BATCH_CHUNK` members, each holding only its members' space-time
partitions and releasing them between chunks, so
a single booking that arrives during a large batch waits for at most one chunk (16
placements and their final checks, about 0.1-0.3 s here) instead of the whole batch
(issue 14 measured a 1,000-route batch holding the lock for 86 s while another
operator's booking waited 55 s); members already placed stay reserved in the index while the lock is
released (a booking in between is placed around them) and are released if a later
chunk fails. With a shared store (PostgreSQL) the batch commits inside the database's
lock, so it is placed in one go.

Zones. Creating or updating a zone does not cancel accepted flights that now cross it:
the response and the change event list them (``affected_flight_ids``) and the regulator
or the operators decide (cancelling a booked flight is a business decision the service
should not take silently). New plans and submissions avoid the zone at once.

Ownership. Operators see and change only their own flights: another operator's flight
gives :class:`NotOwnerError` (PERMISSION_DENIED, the STYLE mapping; flight ids are random
so this reveals nothing useful). Regulators see every flight and alone change zones.

Least information. An operator never learns another operator's flight ids: a zone
change event lists only the watcher's own affected flights (:meth:`Change.for_caller`;
regulators get the full list), and a refused booking names the other flights it
conflicts with as "another operator's flight" (:meth:`ServiceCore.redact`). A
regulator may cancel any flight, but cancelling another operator's flight needs a
reason, which is stored with the flight and sent in the cancel event.

Limits and bounded work. Every limit comes from :class:`server.limits.Limits`
(``fixtures/limits/default_limits.json``); the servicers check message fields before
calling, and the core checks what only it can (flight duration after planning,
departure horizon against its clock, a zone's band against the ground under it, the
number of zones). The final conflict check (:func:`planner.verify.verify` with
``focus``) costs in proportion to the new flight's own duration, so a long flight
already booked cannot make later bookings slow under the booking lock.

Plan once, book that plan (issue 14). An operator's PlanRoute preview is held in a
:class:`server.plans.PlanCache` under a ``plan_id`` (held ``plan_hold_s``, bounded
count, bound to the operator and to the request message); SubmitFlight with that id
skips planning and books the held trajectory: the critical section above (place
against the flights accepted *now*, validator with the zones active now, verifier
against the flights near it) is exactly what can have changed since the preview (the
twin is immutable). The validator's building tests are the one part that cannot
change: they run where the plan is made (a planning process when there are some,
:attr:`planner.route.Route.footprints_checked_xyz`), and a booking of exactly those
waypoints (delays only) skips them; a layer shift or any other geometry gets them all
again. With SQLite the validator runs after the reservation, outside the partitions
(:meth:`ServiceCore._reserve`). It re-plans only when it must: a zone created or changed since
the plan makes the final checks fail (``_zone_gen`` counts zone changes), or the
handle expired and the request carries its route. See :mod:`server.plans`.

Several instances on one database (issue 14). With a shared store
(:class:`server.pgstore.PgStore`, ``store.shared``) the database is the one source of
truth and its ``events`` table the one change feed: every instance follows it
(:meth:`ServiceCore._sync_locked`, woken by LISTEN/NOTIFY, polling as a fallback) and
applies other instances' bookings, cancellations and zone changes to its reservation
index and zone layer, and publishes *every* change, its own included, from the feed
with the feed's sequence number, so every instance's Watch sees every instance's
changes, numbered alike. Bookings, batches and zone changes run under the database's
booking lock (:meth:`server.pgstore.PgStore.booking_lock`): catch up with the feed,
place, check, then commit *inside* the lock (so the next instance to take it sees the
flight); no two instances can accept conflicting flights. With SQLite nothing of this
runs (``shared`` is false).

Idempotency. A request id is bound to its request: the servicer passes a digest of the
request message (SHA-256 of its deterministic serialisation), stored with the flight.
A retry with the same id and the same request replays the booked flight; the same id
with a different request is :class:`IdempotencyMismatchError` (FAILED_PRECONDITION).
Flights stored before digests existed replay as before.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from skytwin.airspace.errors import AirspaceError
from skytwin.airspace.zones import ZoneLayer, ZoneNotFoundError, ground_range_from_grid
from skytwin.server.limits import LimitError, Limits, check_id, check_text, echo, load_limits

__all__ = [
    "BookingRejectedError",
    "IdempotencyMismatchError",
    "Caller",
    "Change",
    "DeadlineError",
    "NotFoundError",
    "NotOwnerError",
    "OverloadedError",
    "RequestTooLargeError",
    "ServiceCore",
    "ServiceLimits",
    "UnauthenticatedError",
    "WrongRoleError",
]

log = logging.getLogger(__name__)

OPERATOR = "operator"
BATCH_CHUNK = 16   # batch members placed per hold of the booking lock (fair booking)
BATCH_YIELD_S = 0.002   # pause between chunks, so that a waiting booking takes the lock
REGULATOR = "regulator"
ACCEPTED = "accepted"
CANCELLED = "cancelled"


# ------------------------------------------------------------------------------ errors
class NotFoundError(AirspaceError, KeyError):
    """No such flight (or other object)."""

    def __str__(self):
        return str(self.args[0]) if self.args else ""


class NotOwnerError(AirspaceError, PermissionError):
    """The flight belongs to another operator."""


class WrongRoleError(AirspaceError, PermissionError):
    """The caller's role may not do this (e.g. an operator changing zones)."""


class UnauthenticatedError(AirspaceError):
    """No credentials, or credentials not recognised."""


class RequestTooLargeError(AirspaceError, ValueError):
    """A request over a limit (batch size, polygon vertices, query size)."""


class OverloadedError(AirspaceError):
    """The server is at capacity for this kind of call (RESOURCE_EXHAUSTED: retry)."""


class IdempotencyMismatchError(AirspaceError):
    """A request id reused with a different request (FAILED_PRECONDITION)."""


class DeadlineError(AirspaceError, TimeoutError):
    """The caller's deadline passed before the booking could be made; nothing booked."""


class BookingRejectedError(AirspaceError):
    """A flight could not be placed conflict-free (or failed the final checks)."""

    def __init__(self, reason: str, flight_ids=()):
        self.reason = reason
        self.flight_ids = tuple(flight_ids)
        super().__init__(reason)


# ------------------------------------------------------------------------------ records
@dataclass(frozen=True)
class Caller:
    """Who calls: ``role`` is ``"operator"`` (with ``operator_id``) or ``"regulator"``."""

    name: str
    role: str
    operator_id: str | None = None
    authorisations: tuple = ()   # derived zone ids or rule ids (server.ground, auth)

    @property
    def is_regulator(self) -> bool:
        return self.role == REGULATOR


ServiceLimits = Limits  # the former name of the limits record (server.limits)


@dataclass(frozen=True)
class Change:
    """One change in the airspace (see :class:`ServiceCore` change log).

    ``kind`` is ``zone_added``, ``zone_updated``, ``zone_removed``, ``flight_accepted``,
    ``flight_cancelled`` or ``flight_state`` (a live-operations lifecycle transition); ``zone`` or ``flight`` (a store ``FlightRecord``) is the subject;
    ``bbox_deg`` its WGS84 bounding box ``(min_lon, min_lat, max_lon, max_lat)``.
    """

    sequence: int
    kind: str
    time_s: float
    actor: str
    bbox_deg: tuple
    zone: object = None
    flight: object = None
    affected_flight_ids: tuple = ()
    affected_operators: tuple = ()   # operator of each affected flight (same order)
    reason: str = ""                 # e.g. why a regulator cancelled a flight
    flight_state: str = ""           # flight_state changes: the lifecycle state after

    def in_box(self, box) -> bool:
        """Whether the subject's bounding box meets ``box`` (None = everywhere)."""
        if box is None:
            return True
        a = self.bbox_deg
        return not (a[2] < box[0] or a[0] > box[2] or a[3] < box[1] or a[1] > box[3])

    def visible_to(self, caller: Caller) -> bool:
        """Operators see zone changes and their own flights; regulators see all."""
        if self.flight is None or caller.is_regulator:
            return True
        return self.flight.operator_id == caller.operator_id

    def for_caller(self, caller: Caller) -> Change:
        """This change as ``caller`` may see it: an operator's copy lists only its own
        affected flights (regulators see every id)."""
        if caller.is_regulator or not self.affected_flight_ids:
            return self
        from dataclasses import replace
        mine = tuple(f for f, op in zip(self.affected_flight_ids, self.affected_operators,
                                        strict=True) if op == caller.operator_id)
        return replace(self, affected_flight_ids=mine,
                       affected_operators=(caller.operator_id,) * len(mine))


# ------------------------------------------------------------------------------- core
class ServiceCore:
    """Twin, zones, planners, store, reservation index and change log (module docstring).

    Parameters
    ----------
    twin : airspace.twin.Twin
    store : server.store.Store
    limits : server.limits.Limits, optional
        Default: :func:`server.limits.load_limits` (the bundled file).
    twin_ref : dict, optional
        What the twin was built from (recorded in the store; a mismatch is logged).
    clock : callable, optional
        ``() -> float`` Unix seconds (tests pass a fixed clock).
    layer_shifts : tuple of int
        Cruise-layer shifts single submits may use besides delays (default ``(0, 1, 2)``:
        the own layer or up to two layers higher; see the module docstring).
    """

    def __init__(self, twin, store, *, limits: Limits | None = None,
                 twin_ref: dict | None = None, clock=time.time, change_log_size=10_000,
                 layer_shifts=(0, 1, 2), zone_rules=None, population=None):
        from skytwin.airspace.rules import load_rules
        from skytwin.planner.conflicts import Separation
        from skytwin.planner.deconflict import AcceptedIndex, DeconflictOptions
        from skytwin.planner.exact import ExactChecker
        from skytwin.planner.validate import RouteValidator

        self.twin = twin
        self.store = store
        self.limits = limits or load_limits()
        self._large_search = threading.BoundedSemaphore(
            max(1, self.limits.large_search_slots))
        self.clock = clock
        rules = load_rules()
        self.ceiling_agl_m = float(rules.ceiling.value_m)
        self.zones = ZoneLayer(twin.frame, store.list_zones())
        from skytwin.server.ground import GroundLayers   # issue 13: risk, derived zones
        self.ground = GroundLayers(twin, zone_rules, population,
                                   overrides=store.list_derived_overrides())
        self.checker = ExactChecker.for_twin(twin)
        self.validator = RouteValidator(twin.buildings, twin.clearance_m)
        self.zone_validator = RouteValidator([], twin.clearance_m)
        self.ground_range = ground_range_from_grid(twin.grid, twin.ground_m)
        self.sep = Separation()
        g_lo = float(twin.ground_m.min())
        g_hi = float(twin.ground_m.max())
        self.deconflict_options = DeconflictOptions(
            layer_shifts=tuple(layer_shifts), min_cruise_m=g_lo,
            max_cruise_m=g_hi + self.ceiling_agl_m)
        self._delay_only = DeconflictOptions(
            layer_shifts=(0,), min_cruise_m=g_lo, max_cruise_m=g_hi + self.ceiling_agl_m)
        from skytwin.server.partitions import BookingGate, LockedIndex, PartitionLocks
        self.index = LockedIndex(AcceptedIndex(self.sep, self.deconflict_options))
        self._info = None
        from skytwin.server.plans import PlanCache
        self.plans = PlanCache(self.limits.plan_hold_s, self.limits.max_held_plans,
                               self.limits.max_held_plans_per_operator, clock=clock)
        self._zone_gen = 0          # zone changes so far (held plans record it)
        # bookings: the gate shared + their space-time partitions (server.partitions);
        # zone changes and re-routes: ``with self._book`` (the gate, exclusive);
        # ``_state``: short sections on the owners, pending requests and change log
        self._book = BookingGate()
        self._parts = PartitionLocks()
        # the route validator's R-tree (libspatialindex) is not safe to query from two
        # threads at once; the rest of a placement is private or guarded (_place_checked)
        self._validator_lock = threading.Lock()
        self._state = threading.RLock()
        self._pending: dict = {}  # (operator_id, request_id) -> Event of the running submit
        self._owner: dict = {}    # flight id -> operator id, for every reserved flight
        self._uncertain: set = set()   # flight ids whose commit failed (_release_unstored)
        self._local = threading.local()
        self._planners: list = []   # every thread's planner (memory accounting)
        self._plan_pool = None      # server.workers.PlanPool (start_plan_pool)
        self._closers: list = []    # on_close hooks
        # change sequence numbers never go backwards across restarts: every published
        # change writes at least one store event, so starting from the store's last event
        # number keeps new numbers above any number handed out before a restart (a watcher
        # resuming across a restart gets no backlog and re-lists; see subscribe)
        self._seq = store.last_event_seq()
        self._changes: deque = deque(maxlen=change_log_size)
        self._subs: list = []
        self._subs_lock = threading.Lock()
        self._shared = bool(getattr(store, "shared", False))
        self._listener = None
        if self._shared:        # zones put between list_zones and the cursor above
            for z in store.list_zones():
                self.zones.replace(z)
        self._zone_seen = {z.id for z in self.zones.list()}
        for rec in store.accepted_flights(t_from_s=self.clock()):
            self.index.accept(rec.trajectory)
            self._owner[rec.flight_id] = rec.operator_id
        if twin_ref is not None:
            old = store.get_twin_ref()
            if old and old != twin_ref:
                log.warning("store was written for twin %s, now serving %s", old, twin_ref)
            store.set_twin_ref(twin_ref)
        log.info("service core: %d zones, %d accepted flights", len(self.zones),
                 len(self.index))
        if self._shared:
            self._stop_listen = threading.Event()
            self._listener = threading.Thread(
                target=store.listen, args=(self._on_notify, self._stop_listen),
                daemon=True, name="skytwin-feed")
            self._listener.start()

    # ---------------------------------------------------------------- shared store
    def _booking_lock(self, keys=None):
        """The database's booking lock with a shared store, else nothing: exclusive
        without ``keys``, else shared plus the partitions ``keys``."""
        if not self._shared:
            return contextlib.nullcontext()
        return self.store.booking_lock() if keys is None else self.store.booking_lock(keys)

    @contextlib.contextmanager
    def _booking(self, trajs, gate=True):
        """A booking's critical section: the gate shared (``gate=False``: the caller
        holds it) and the space-time partitions ``trajs`` could occupy, here and
        (shared store) in the database."""
        from skytwin.server.partitions import partition_keys
        opts = self.deconflict_options     # the layer options place() may choose
        dz = [s * opts.layer_spacing_m for s in opts.layer_shifts]
        keys = set()
        for tr in trajs:
            keys.update(partition_keys(tr, self.sep.horizontal_m, self.sep.time_buffer_s,
                                       layer_dz_m=dz))
        keys = sorted(keys)
        with (self._book.shared() if gate else contextlib.nullcontext()), \
                self._parts.hold(keys), self._booking_lock(keys):
            if self._shared:
                with self._state:
                    self._sync_locked()
            yield

    def _on_notify(self) -> None:
        try:
            with self._state:
                self._sync_locked()
        except Exception:   # noqa: BLE001 - keep following the feed
            log.exception("following the store's change feed failed")

    def _sync_locked(self) -> None:
        """Apply and publish every stored event after ``self._seq`` (shared store;
        call with the booking lock held; one sync at a time: ``_state``)."""
        with self._state:
            while True:
                evs = self.store.events_since(self._seq, 1000)
                if not evs:
                    return
                for ev in evs:
                    self._apply_event(ev)
                    self._seq = max(self._seq, int(ev["seq"]))

    def _apply_event(self, ev) -> None:
        kind, oid, seq, actor = ev["kind"], ev["id"], int(ev["seq"]), ev["actor"]
        if kind in ("flight_accepted", "flight_cancelled", "flight_state"):
            rec = self.store.get_flight(oid)
            if rec is None:
                return
            if kind == "flight_accepted":
                if rec.status == ACCEPTED and oid not in self.index \
                        and rec.trajectory.t_end_s >= self.clock():
                    self.index.accept(rec.trajectory)
                self._owner[oid] = rec.operator_id
                self._publish(kind, actor, _flight_bbox(rec), flight=rec, seq=seq)
            elif kind == "flight_cancelled":
                if oid in self.index:
                    self.index.cancel(oid)
                self._publish(kind, actor, _flight_bbox(rec), flight=rec,
                              reason=ev["reason"] or "", seq=seq)
                self._owner.pop(oid, None)
            else:
                head, _, why = (ev["reason"] or "").partition(": ")
                to_state = head.partition("->")[2]
                if why == "rerouted" and oid in self.index and rec.status == ACCEPTED:
                    self.index.cancel(oid)
                    self.index.accept(rec.trajectory)
                self._publish("flight_state", actor, _flight_bbox(rec), flight=rec,
                              reason=why, flight_state=to_state, seq=seq)
        elif kind == "zone_put":
            zone = self.store.get_zone(oid)
            if zone is None and oid in self.ground:   # a derived-zone override
                from skytwin.server.ground import apply_override_event
                apply_override_event(self, oid, actor, seq)
                return
            if zone is None:          # deleted since: its zone_deleted event follows
                return
            existed = oid in self._zone_seen
            self.zones.replace(zone)
            self._zone_gen += 1
            self._zone_seen.add(oid)
            affected = self.affected_flights(zone)
            self._publish("zone_updated" if existed else "zone_added", actor,
                          self._zone_bbox(oid), zone=zone, affected=affected, seq=seq)
        elif kind == "zone_deleted":
            self._zone_seen.discard(oid)
            if oid not in self.zones:
                return
            zone = self.zones.get(oid)
            bbox = self._zone_bbox(oid)
            self.zones.remove(oid)
            self._zone_gen += 1
            self._publish("zone_removed", actor, bbox, zone=zone, seq=seq)

    # ---------------------------------------------------------------- planners
    def planner(self):
        """This thread's :class:`~planner.route.Planner` (created on first use)."""
        p = getattr(self._local, "planner", None)
        if p is None:
            from skytwin.planner.route import Planner
            p = self._local.planner = Planner(
                self.twin, self.zones, checker=self.checker,
                keep_workspace_voxels=self.limits.keep_workspace_voxels,
                large_search=self._large_search,
                large_search_wait_s=min(10.0, self.limits.deadline_plan_s))
            with self._subs_lock:
                self._planners.append(p)
        return p

    # ---------------------------------------------------------------- planning processes
    def prepare_planning(self, min_agl_m: float | None = None,
                         ceiling_agl_m: float | None = None) -> None:
        """Build the shared planning tables (pyramids of every level, reachability
        labels) for the default altitude band now, so that forked planning workers
        share them instead of each building its own."""
        from skytwin.planner.route import RouteRequest
        d = RouteRequest((0.0, 0.0), (0.0, 0.0))
        self.planner().prepare(d.min_agl_m if min_agl_m is None else min_agl_m,
                               d.ceiling_agl_m if ceiling_agl_m is None else ceiling_agl_m)

    def start_plan_pool(self, processes: int):
        """Plan in ``processes`` forked worker processes (:mod:`server.workers`);
        call once the core is warm and before the server starts any thread."""
        from skytwin.server.workers import PlanPool
        self.prepare_planning()
        self._plan_pool = PlanPool(self, processes).start()
        return self._plan_pool

    @property
    def plan_pool(self):
        """The :class:`server.workers.PlanPool`, or None (planning threads)."""
        return self._plan_pool

    def plan_state_key(self):
        """What a planning worker must hold to plan like this process: the zone and
        derived-zone generations."""
        return (self._zone_gen, getattr(getattr(self, "ground", None), "generation", 0))

    def plan_state(self) -> dict:
        """The run-time state a planning worker needs (zones, derived overrides)."""
        ground = getattr(self, "ground", None)
        return {"zones": self.zones.list(),
                "overrides": dict(getattr(ground, "_overrides", {}) or {})}

    def apply_plan_state(self, state: dict) -> None:
        """In a planning worker: take the serving process's zones and overrides."""
        new = {z.id: z for z in state["zones"]}
        for z in self.zones.list():
            if z.id not in new:
                self.zones.remove(z.id)
        for zid, z in new.items():
            if zid in self.zones:
                try:
                    if self.zones.get(zid) == z:
                        continue
                except (TypeError, ValueError):
                    pass
            self.zones.replace(z)
        ground = getattr(self, "ground", None)
        if ground is not None and hasattr(ground, "_overrides"):
            with ground._lock:
                ground._overrides = dict(state["overrides"])
                ground._rebuild()

    def workspace_bytes(self) -> int:
        """Search-workspace bytes kept by every planner thread between calls."""
        with self._subs_lock:
            return sum(p.workspace_bytes() for p in self._planners)

    def warm_up(self) -> None:
        """Plan one short route, and place and verify two crossing flights on a private
        index, so that numba compiles (or loads) the planning and the booking kernels
        now rather than in the first requests."""
        self._warm_up_booking()
        self._warm_up_planning()

    def _warm_up_booking(self) -> None:
        from skytwin.planner.deconflict import AcceptedIndex, place
        from skytwin.planner.trajectory import Trajectory
        from skytwin.planner.verify import verify
        idx = AcceptedIndex(self.sep, self.deconflict_options)    # not the service's
        t0 = float(self.clock()) + 3600.0
        t = [t0, t0 + 10.0, t0 + 40.0, t0 + 50.0]
        a = Trajectory("warm-a", [[0, 0, 0], [0, 0, 40], [300, 0, 40], [300, 0, 0]], t,
                       max_delay_s=600.0)
        b = Trajectory("warm-b", [[150, -150, 0], [150, -150, 40], [150, 150, 40],
                                  [150, 150, 0]], t, max_delay_s=600.0)
        idx.accept(a)
        p = place(b, idx)
        if p.trajectory is not None:
            verify([a, p.trajectory], self.sep, focus=[b.flight_id])
            idx.accept(p.trajectory)
        idx.near([b], max_delay_s=0.0)

    def _warm_up_planning(self) -> None:
        from skytwin.airspace.zones import Altitude, Circle, LocalZone, Zone, zone_voxels
        from skytwin.planner.route import PlanError, RouteRequest
        g = self.twin.grid
        # zone rasterization kernels (a route near a zone or a derived zone needs them)
        lon, lat = self.twin.frame.to_wgs84(0.5 * (g.x0_m + g.x1_m), 0.5 * (g.y0_m + g.y1_m))
        band = {"lower": Altitude(0, "AGL"), "upper": Altitude(50, "AGL")}
        for z in (Zone(id="warm-c", circle=Circle(float(lon), float(lat), 30.0), **band),
                  Zone(id="warm-p", polygon=[(float(lon), float(lat)),
                                              (float(lon) + 3e-4, float(lat)),
                                              (float(lon), float(lat) + 3e-4)], **band)):
            zone_voxels(LocalZone(z, self.twin.frame), g, self.twin.ground_m, 5.0)
        cx, cy = 0.5 * (g.x0_m + g.x1_m), 0.5 * (g.y0_m + g.y1_m)
        for dx in (0.0, 40.0, -40.0, 80.0):
            a = self.twin.frame.to_wgs84(cx + dx, cy + dx)
            b = self.twin.frame.to_wgs84(cx + dx + 60.0, cy + dx)
            try:      # the service's own path: derived zones and checks included
                self.plan_local(RouteRequest((float(a[0]), float(a[1])),
                                             (float(b[0]), float(b[1])),
                                             depart_s=self.clock()))
                return
            except (PlanError, ValueError):
                continue

    # ---------------------------------------------------------------- airspace
    def info(self) -> dict:
        """Twin summary (computed once: the twin is immutable) plus live counts."""
        if self._info is None:
            d = dict(self.twin.summary())
            src = self.twin.meta.get("source", []) or []
            d.update(resolution_m=self.twin.resolution_m, layer_m=self.twin.layer_m,
                     ceiling_agl_m=self.ceiling_agl_m, z0_m=self.twin.grid.z0_m,
                     source=", ".join(map(str, src if isinstance(src, list) else [src])))
            self._info = d
        return dict(self._info, zone_count=len(self.zones),
                    accepted_flight_count=len(self.index), limits=self.limits.as_dict())

    def encode_grid_code(self, lon_deg, lat_deg, alt_m, reference, res=None, layer_m=None):
        from skytwin.airspace.gridcode import DEFAULT_LAYER_M, DEFAULT_RES, GridCode
        return GridCode.from_point(lon_deg, lat_deg, alt_m, res or DEFAULT_RES,
                                   layer_m or DEFAULT_LAYER_M, reference)

    def decode_grid_code(self, text: str):
        from skytwin.airspace.gridcode import GridCode
        return GridCode.parse(text)

    def check_query_area(self, box, res=None) -> None:
        """Refuse, before any work, a box that holds more than ``max_query_cells`` H3
        cells at ``res`` (estimated from its area in the twin's frame)."""
        import h3

        from skytwin.airspace.gridcode import DEFAULT_RES
        from skytwin.server.limits import check_range
        res = int(check_range("resolution", res or DEFAULT_RES, 0, 15))
        x, y = self.twin.frame.to_local([box[0], box[2], box[2], box[0]],
                                        [box[1], box[1], box[3], box[3]])
        import numpy as np
        area_m2 = float(np.ptp(x) * np.ptp(y)) if np.all(np.isfinite([*x, *y])) else math.inf
        cells = area_m2 / h3.average_hexagon_area(res, unit="m^2")
        mx = self.limits.max_query_cells
        if not cells <= mx:
            raise RequestTooLargeError(
                f"box holds about {cells:.3g} cells at resolution {res}, more than the "
                f"limit of {mx}; narrow the box or use a coarser resolution")

    def blocked_codes(self, box, z_lo_m, z_hi_m, t_s=None, res=None, layer_m=None,
                      clearance_m=0.0):
        """``{GridCode: (Blocker, ...)}`` in a WGS84 box and AMSL band."""
        from skytwin.airspace.gridcode import DEFAULT_LAYER_M, DEFAULT_RES
        from skytwin.airspace.query import blocked_codes
        from skytwin.server.limits import check_range
        lim = self.limits
        check_range("clearance_m", clearance_m, 0.0, lim.max_query_clearance_m, "m")
        self.check_query_area(box, res)
        res = res or DEFAULT_RES
        layer_m = layer_m or DEFAULT_LAYER_M
        check_range("resolution", res, 0, 15)
        check_range("layer_m", layer_m, 0.1, 1000.0, "m")
        check_range("z_lo_amsl_m", z_lo_m, -lim.max_abs_altitude_m, lim.max_abs_altitude_m,
                    "m")
        check_range("z_hi_amsl_m", z_hi_m, -lim.max_abs_altitude_m, lim.max_abs_altitude_m,
                    "m")
        layers = (z_hi_m - z_lo_m) / layer_m
        if layers > lim.max_blocked_codes:
            raise RequestTooLargeError(
                f"the band z_lo_amsl_m..z_hi_amsl_m holds {layers:.0f} layers, more than "
                f"the limit of {lim.max_blocked_codes} codes; narrow it")
        from skytwin.airspace.errors import GridCodeError
        try:
            out = blocked_codes(self.twin, tuple(box), z_lo_m, z_hi_m, zones=self.zones,
                                t_s=t_s, res=res, layer_m=layer_m, clearance_m=clearance_m,
                                max_codes=lim.max_blocked_codes)
        except GridCodeError as exc:   # the area/band could hold too many codes
            if "max_c" in str(exc):
                raise RequestTooLargeError(str(exc)) from None
            raise
        entries = sum(len(b) for b in out.values())
        if entries > 4 * lim.max_blocked_codes:
            raise RequestTooLargeError(
                f"the answer lists {entries} blockers, more than the limit of "
                f"{4 * lim.max_blocked_codes}; narrow the box, the band or the clearance")
        return out

    # ---------------------------------------------------------------- zones
    def _require_regulator(self, caller: Caller, what: str):
        if not caller.is_regulator:
            raise WrongRoleError(f"only regulators may {what}; caller {caller.name!r} "
                                 f"has role {caller.role!r}")

    def check_zone_size(self, zone) -> None:
        n = len(zone.polygon) if zone.polygon is not None else 0
        if n > self.limits.max_polygon_vertices:
            raise RequestTooLargeError(
                f"zone {zone.id}: polygon has {n} vertices, more than the limit of "
                f"{self.limits.max_polygon_vertices}; simplify it")

    def check_zone(self, zone) -> None:
        """Every limit on a zone (the servicer checked the message fields already;
        ED-269 imports come here only): id, texts, size, radius, altitudes, and a
        band that is not empty at the zone's location.

        The band check converts both limits to AMSL with the twin's ground under the
        zone's box (``[g_lo, g_hi]``) and refuses a band that is empty everywhere
        (highest possible upper limit <= lowest possible lower limit), e.g. 100 m AGL
        to 5 m AMSL over ground at 0..30 m. A band empty over part of a hilly
        footprint (0 m AGL to 150 m AMSL over ground at 0..200 m) is accepted: it
        blocks where it is not empty.
        """
        from skytwin.airspace.errors import ZoneError
        from skytwin.airspace.zones import LocalZone
        from skytwin.server.limits import check_range
        lim = self.limits
        check_id(lim, "zone.id", zone.id)
        for name, v in (("zone.name", zone.name or ""), ("zone.reason", zone.reason or ""),
                        ("zone.authority_name", zone.authority.name or ""),
                        ("zone.authority_contact", zone.authority.contact or "")):
            check_text(lim, name, v)
        self.check_zone_size(zone)
        if zone.circle is not None:
            check_range(f"zone {zone.id}: circle.radius_m", zone.circle.radius_m, 0.0,
                        lim.max_radius_m, "m")
        for name in ("lower", "upper"):
            check_range(f"zone {zone.id}: {name}.value_m", getattr(zone, name).value_m,
                        -lim.max_abs_altitude_m, lim.max_abs_altitude_m, "m")
        lz = LocalZone(zone, self.twin.frame)
        g_lo, g_hi = self.ground_range(*lz.bounds_m)
        low = zone.lower.amsl_m(g_lo)
        high = zone.upper.amsl_m(g_hi)
        if not high > low:
            raise ZoneError(
                f"zone {zone.id}: lower limit {zone.lower.value_m:g} m "
                f"{zone.lower.reference} is not below upper limit "
                f"{zone.upper.value_m:g} m {zone.upper.reference} anywhere at the zone "
                f"(ground {g_lo:.1f}..{g_hi:.1f} m AMSL): the band is empty")

    def _zone_bbox(self, zone_id) -> tuple:
        x0, y0, x1, y1 = self.zones.local(zone_id).bounds_m
        lon, lat = self.twin.frame.to_wgs84([x0, x1, x1, x0], [y0, y0, y1, y1])
        return (float(min(lon)), float(min(lat)), float(max(lon)), float(max(lat)))

    def affected_flights(self, zone) -> list[str]:
        """Accepted flights that enter ``zone`` while it is active (sorted ids)."""
        lz = self.zones.local(zone.id) if zone.id in self.zones else None
        if lz is None:
            from skytwin.airspace.zones import LocalZone
            lz = LocalZone(zone, self.twin.frame)
        out = []
        bx0, by0, bx1, by1 = lz.bounds_m
        for tr in self.index.trajectories:
            if "#" in tr.flight_id or not zone.active_during(tr.t_start_s, tr.t_end_s):
                continue   # ('#': a route held after a failed commit, not a flight)
            xy = tr.xyz_m[:, :2]
            if (xy[:, 0].max() < bx0 or xy[:, 0].min() > bx1 or xy[:, 1].max() < by0
                    or xy[:, 1].min() > by1):
                continue  # the flight's box misses the zone's box
            rep = self.zone_validator.check(tr.xyz_m, tr.t_s, zones=[lz],
                                            ground_range=self.ground_range)
            if any("no-fly volume" in p for p in rep.problems):
                out.append(tr.flight_id)
        return sorted(out)

    def create_zone(self, caller: Caller, zone, *, replace: bool = False):
        """Add (or with ``replace``, overwrite) a zone; returns ``(zone, affected ids)``."""
        self._require_regulator(caller, "create zones")
        self.check_zone(zone)
        with self._book, self._booking_lock():
            if self._shared:
                self._sync_locked()
            exists = zone.id in self.zones
            if exists and not replace:
                from skytwin.airspace.errors import ZoneError
                raise ZoneError(f"zone {zone.id}: id already exists (use UpdateZone)")
            if not exists and len(self.zones) >= self.limits.max_zones:
                raise RequestTooLargeError(
                    f"the service holds {len(self.zones)} zones, the limit of "
                    f"{self.limits.max_zones}; delete zones first")
            from skytwin.airspace.zones import LocalZone
            LocalZone(zone, self.twin.frame)  # validate projection before persisting
            self.store.put_zone(zone, caller.name, self.clock())
            if self._shared:      # applied and published from the feed
                self._sync_locked()
                return zone, self.affected_flights(zone)
            self.zones.replace(zone)
            self._zone_gen += 1
            affected = self.affected_flights(zone)
            self._publish("zone_updated" if exists else "zone_added", caller.name,
                          self._zone_bbox(zone.id), zone=zone, affected=affected,
                          affected_operators=[self._owner.get(f, "") for f in affected])
        return zone, affected

    def update_zone(self, caller: Caller, zone):
        self._require_regulator(caller, "update zones")
        if zone.id not in self.zones:
            raise ZoneNotFoundError(f"no zone with id {zone.id!r}")
        return self.create_zone(caller, zone, replace=True)

    def delete_zone(self, caller: Caller, zone_id: str):
        self._require_regulator(caller, "delete zones")
        with self._book, self._booking_lock():
            if self._shared:
                self._sync_locked()
            zone = self.zones.get(zone_id)
            bbox = self._zone_bbox(zone_id)
            self.store.delete_zone(zone_id, caller.name, self.clock())
            if self._shared:      # applied and published from the feed
                self._sync_locked()
                return zone
            self.zones.remove(zone_id)
            self._zone_gen += 1
            self._publish("zone_removed", caller.name, bbox, zone=zone)
        return zone

    def get_zone(self, zone_id: str):
        return self.zones.get(zone_id)

    def list_zones(self):
        return self.zones.list()

    def query_zones(self, box, z_lo_m=None, z_hi_m=None, t0_s=None, t1_s=None):
        """Zones meeting a WGS84 box, an AMSL band and a time span (sorted by id).

        Conservative for AGL limits: the ground anywhere in the twin lies in
        ``[g_lo, g_hi]``, so AGL limits are converted at ``g_lo`` and the band's bottom
        is lowered by ``g_hi - g_lo``; a zone is never missed, and an AMSL zone up to
        that much below the band may be included.
        """
        b = box if box is not None else self.twin.bounds_wgs84()
        g_lo = float(self.twin.ground_m.min())
        g_hi = float(self.twin.ground_m.max())
        if z_lo_m is not None:
            z_lo_m = z_lo_m - (g_hi - g_lo)
        return self.zones.in_box(*b, z_lo_m=z_lo_m, z_hi_m=z_hi_m, t0_s=t0_s, t1_s=t1_s,
                                 ground_m=g_lo)

    def import_ed269(self, caller: Caller, text: str, replace: bool = False):
        """Import an ED-269 JSON document; returns ``(zones, affected ids)``.

        The document's size and nesting depth are checked before it is parsed, and
        every zone passes :meth:`check_zone` before any is stored."""
        from skytwin.airspace.ed269 import loads_ed269
        from skytwin.airspace.errors import ZoneError
        self._require_regulator(caller, "import zones")
        lim = self.limits
        if len(text) > lim.max_ed269_bytes:
            raise RequestTooLargeError(f"ed269_json: {len(text)} characters, over the "
                                       f"limit of {lim.max_ed269_bytes}")
        zones = loads_ed269(text, max_depth=lim.max_json_depth)
        new = {z.id for z in zones if z.id not in self.zones}
        if len(self.zones) + len(new) > lim.max_zones:
            raise RequestTooLargeError(f"importing {len(zones)} zones would exceed the "
                                       f"limit of {lim.max_zones} zones")
        for z in zones:
            self.check_zone(z)
            if not replace and z.id in self.zones:
                raise ZoneError(f"zone {z.id}: id already exists (set replace_existing)")
        affected: set[str] = set()
        for z in zones:
            affected.update(self.create_zone(caller, z, replace=True)[1])
        return zones, sorted(affected)

    def export_ed269(self, country: str = "XXX") -> str:
        import json

        from skytwin.airspace.ed269 import dump_ed269
        country = country or "XXX"
        if len(country) != 3 or not country.isalpha() or not country.isascii():
            raise LimitError(f"country must be an ISO 3166-1 alpha-3 code, got "
                             f"{echo(country, self.limits.echo_chars)}")
        return json.dumps(dump_ed269(self.zones.list(), country=country))

    # ---------------------------------------------------------------- flights
    def plan(self, req, caller: Caller | None = None):
        """Plan a route (preview, reserves nothing); :class:`planner.route.Route`,
        avoiding the derived zones that block ``caller`` (:mod:`server.ground`).

        With a pool of planning processes (:meth:`start_plan_pool`) the plan runs in
        one of them; a worker lost during the call is retried here once."""
        pool = self._plan_pool
        if pool is not None:
            from skytwin.server.workers import PlanWorkerLostError
            try:
                return pool.call("plan_local", req, caller)
            except PlanWorkerLostError:
                log.warning("planning worker lost; planning this call in the server")
        return self.plan_local(req, caller)

    def plan_local(self, req, caller: Caller | None = None):
        """:meth:`plan` in this process (a planning thread or a worker process)."""
        if req.ceiling_agl_m > self.ceiling_agl_m:
            raise ValueError(f"ceiling_agl_m {req.ceiling_agl_m:g} is above the "
                             f"{self.ceiling_agl_m:g} m AGL limit of the rules")
        self._check_duration_bound(req)
        route = self.ground.plan(self.planner(), req,
                                 caller.authorisations if caller is not None else ())
        mx = self.limits.max_flight_duration_s
        if route.duration_s > mx:
            raise LimitError(f"flight duration {route.duration_s:.0f} s is over the limit "
                             f"of {mx:g} s; fly faster or split the flight")
        # the booking's building tests, done here (in a planning process when there
        # are some, off the booking path): Route.footprints_checked_xyz
        xyz = route.trajectory.xyz_m
        with self._validator_lock:
            rep = self.validator.check(xyz)
        route.footprints_checked_xyz = np.array(xyz, dtype=np.float64) if rep.ok else None
        return route

    def hold_plan(self, caller: Caller, route_digest: str, req, meta: dict, route):
        """Hold ``route`` (just planned for ``req``) for ``caller``'s SubmitFlight;
        the :class:`server.plans.HeldPlan`, or ``None`` for a caller that cannot book.

        ``route_digest`` identifies the ``RouteRequest`` message it was planned for."""
        if caller.role != OPERATOR or not caller.operator_id:
            return None
        return self.plans.put(caller.operator_id, route_digest, req, meta, route,
                              self._zone_gen)

    def _check_duration_bound(self, req):
        """Refuse before planning a flight that cannot be short enough: it lasts at
        least straight distance / cruise speed."""
        import math
        a = self.twin.frame.to_local(*req.start_lonlat)
        b = self.twin.frame.to_local(*req.goal_lonlat)
        low_s = math.dist(a, b) / req.speeds.cruise_mps
        mx = self.limits.max_flight_duration_s
        if math.isfinite(low_s) and low_s > mx:
            raise LimitError(f"flight duration would be at least {low_s:.0f} s at "
                             f"cruise_speed_mps {req.speeds.cruise_mps:g}, over the limit "
                             f"of {mx:g} s")

    def _check_departure(self, req):
        """Bookings depart now or later: finished flights leave the reservation index at
        restart, so a booking in the past could not be deconflicted against them."""
        now = self.clock()
        ahead = self.limits.max_departure_ahead_s
        if req.depart_s > now + ahead:
            raise LimitError(f"departure_time is {(req.depart_s - now) / 86400:.0f} days "
                             f"ahead; bookings may start at most {ahead / 86400:g} days "
                             "ahead")
        if req.depart_s < now - self.limits.past_departure_s:
            raise ValueError(f"departure_time is {now - req.depart_s:.0f} s in the past; "
                             f"bookings may start at most {self.limits.past_departure_s:g} s "
                             "ago (PlanRoute previews any time)")

    def _require_operator(self, caller: Caller):
        if caller.role != OPERATOR or not caller.operator_id:
            raise WrongRoleError(f"only operators book flights; caller {caller.name!r} has "
                                 f"role {caller.role!r}")

    @staticmethod
    def _check_deadline(deadline_s, what):
        if deadline_s is not None and time.monotonic() >= deadline_s:
            raise DeadlineError(f"deadline exceeded before {what}; nothing was booked")

    def _trajectory(self, route, req_meta, flight_id=None):
        from skytwin.planner.trajectory import Trajectory
        tr = route.trajectory
        return Trajectory(flight_id or tr.flight_id, tr.xyz_m, tr.t_s, priority=req_meta["priority"],
                          max_delay_s=req_meta["max_delay_s"],
                          meta={"speeds": req_meta["speeds"]})

    def _checks(self, traj, speeds, others=(), shifted=False, *, authorisations=()):
        """Problems of a placed trajectory (empty list = acceptable): the rules
        (:meth:`_rule_problems`) and the conflicts (:meth:`_conflict_problems`)."""
        return [*self._rule_problems(traj, speeds, shifted,
                                     authorisations=authorisations),
                *self._conflict_problems(traj, others)]

    def _rule_problems(self, traj, speeds, shifted=False, checked_xyz=None, *,
                       authorisations=()):
        """What the route validator and the AGL ceiling find wrong with a placed
        trajectory: buildings, vertical take-off and landing, speeds, every zone active
        while it flies (nothing here depends on the other flights).

        ``shifted``: the cruise was moved to another layer, so the altitude rules are
        checked again (conservatively: highest point of a segment over the lowest
        ground under it); an unshifted route keeps the planner's checked geometry.
        ``checked_xyz``: waypoints whose building tests passed where the plan was made
        (:attr:`planner.route.Route.footprints_checked_xyz`); when ``traj`` has exactly
        these waypoints, the building tests are not repeated.
        ``authorisations``: the booking operator's (:class:`Caller`); every derived
        zone that blocks this operator is checked, as the planner avoided them
        (authorisation zones included: an override may have put one in force
        since the plan was made).
        """
        t0, t1 = traj.t_start_s, traj.t_end_s
        zones = [*self.zones.local_zones(t0, t1), *self.ground.blocking(authorisations)]
        buildings = not (checked_xyz is not None and not shifted
                         and np.array_equal(traj.xyz_m, checked_xyz))
        with self._validator_lock:
            rep = self.validator.check(traj.xyz_m, traj.t_s, speeds, zones=zones,
                                       ground_range=self.ground_range,
                                       buildings=buildings)
        problems = list(rep.problems)
        # AGL ceiling on the cruise waypoints (ground under each waypoint, conservative:
        # the highest ground under each segment's box)
        xyz = traj.xyz_m
        for s in range(1, len(xyz) - 2 if shifted else 1):
            p0, p1 = xyz[s], xyz[s + 1]
            g_lo, _ = self.ground_range(min(p0[0], p1[0]), min(p0[1], p1[1]),
                                        max(p0[0], p1[0]), max(p0[1], p1[1]))
            if max(p0[2], p1[2]) - g_lo > self.ceiling_agl_m + 1e-6:
                problems.append(f"segment {s} above the {self.ceiling_agl_m:g} m AGL ceiling")
                break
        return problems

    def _conflict_problems(self, traj, others=()):
        """Conflicts of a placed trajectory with the accepted flights (and ``others``)
        found by the independent verifier (call with its partitions held)."""
        from skytwin.planner.verify import verify
        problems = []
        # accepted flights with a segment in one of its space-time buckets (as placed:
        # no more delay): the only ones it can conflict with (AcceptedIndex)
        lo = traj.t_start_s - self.sep.time_buffer_s
        hi = traj.t_end_s + self.sep.time_buffer_s
        near = [o for o in (*self.index.near([traj], max_delay_s=0.0), *others)
                if o.flight_id != traj.flight_id and o.t_end_s >= lo and o.t_start_s <= hi]
        if near:
            vr = verify([traj, *near], self.sep, focus=[traj.flight_id])
            for c in vr.residual_conflicts:
                if traj.flight_id in (c.flight_a, c.flight_b):
                    problems.append(f"conflict between {c.flight_a} and {c.flight_b} near "
                                    f"t={c.near_t_s:.0f} s")
        return problems

    def _place_checked(self, traj, speeds, others=(), *, authorisations=()):
        """Place ``traj`` against the index (call with its partitions held).

        Placements of disjoint partitions run at the same time. The one thing they
        share that is not thread-safe is the route validator's R-tree: libspatialindex
        (the ``rtree`` package) is not safe even for concurrent queries (its queries
        share a memory pool; Toblerity/rtree#53, libspatialindex#189), which is the
        likely cause of the segfault once seen in ``bench_batch_fairness`` with two
        concurrent placements; so ``validator.check`` (its R-tree, the shapely
        footprints and zone shapes it tests) runs under ``_validator_lock``. The live
        hub's resolver shares this validator without that lock (a load test once got
        "operands could not be broadcast" from the R-tree's answer), so the validator
        also holds a lock of its own around every R-tree query
        (``planner/validate.py``, ``tests/test_validator_threads.py``).
        Everything else is private to the call (the detector's and the verifier's
        arrays, a k-d tree built per call) or guarded (the index: ``LockedIndex``;
        zones: ``ZoneLayer``)."""
        from skytwin.planner.deconflict import place
        p = place(traj, self.index)
        if p.trajectory is not None:
            problems = self._checks(p.trajectory, speeds, others,
                                    shifted=p.choice.layer_shift != 0,
                                    authorisations=authorisations)
            if not problems:
                return p
            if p.choice.layer_shift == 0:
                raise BookingRejectedError(f"flight {traj.flight_id} failed the final "
                                           f"checks: {'; '.join(problems[:3])}",
                                           [traj.flight_id])
        if p.trajectory is None:      # delays only are a subset of those options
            raise BookingRejectedError(f"flight {traj.flight_id}: {p.reason}",
                                       [traj.flight_id])
        from skytwin.server.partitions import IndexView
        p = place(traj, IndexView(self.index, self._delay_only))
        if p.trajectory is None:
            raise BookingRejectedError(f"flight {traj.flight_id}: {p.reason}",
                                       [traj.flight_id])
        problems = self._checks(p.trajectory, speeds, others,
                                authorisations=authorisations)
        if problems:
            raise BookingRejectedError(f"flight {traj.flight_id} failed the final checks: "
                                       f"{'; '.join(problems[:3])}", [traj.flight_id])
        return p

    def _record(self, caller, request_id, placement, route_req, meta, digest=None):
        from skytwin.server.store import FlightRecord
        tr = placement.trajectory
        lon, lat = self.twin.frame.to_wgs84(tr.xyz_m[:, 0], tr.xyz_m[:, 1])
        import numpy as np
        ground = np.array([self.twin.ground_m[self.twin.grid.column_of(x, y)]
                           for x, y in tr.xyz_m[:, :2]], dtype=np.float64)
        agl = np.round(tr.xyz_m[:, 2] - ground, 2)
        m = dict(meta)
        m.update(delay_s=placement.choice.delay_s, layer_shift=placement.choice.layer_shift,
                 speeds=meta["speeds"])
        return FlightRecord(flight_id=tr.flight_id, operator_id=caller.operator_id,
                            request_id=request_id, status=ACCEPTED, trajectory=tr,
                            lonlat_deg=np.column_stack([lon, lat]),
                            alt_amsl_m=tr.xyz_m[:, 2].copy(), alt_agl_m=agl,
                            priority=tr.priority, created_s=self.clock(), meta=m,
                            request_digest=digest or None)

    def _new_id(self):
        from skytwin.server.store import new_flight_id
        return new_flight_id()

    def _replay(self, old, request_id, digest):
        """``old`` (the flight booked under ``request_id``) for a retry, after checking
        that the retry is the same request (module docstring, Idempotency)."""
        if (old is not None and digest and old.request_digest
                and old.request_digest != digest):
            raise IdempotencyMismatchError(
                f"request_id {echo(request_id, self.limits.echo_chars)} was already used "
                "for a different request; use a new request_id for a new request")
        self._announce_landed(old)
        return old

    def _announce_landed(self, rec) -> None:
        """Publish ``flight_accepted`` for ``rec`` (found in the store by a retry) if
        its commit was reported failed (:meth:`_release_unstored`): it landed, and its
        watchers hear of it now, once."""
        if rec is None or rec.flight_id not in self._uncertain:
            return
        with self._state:
            if rec.flight_id in self._uncertain:
                self._uncertain.discard(rec.flight_id)
                self._publish("flight_accepted", rec.operator_id, _flight_bbox(rec),
                              flight=rec)

    def redact(self, text: str, caller: Caller, own=()) -> str:
        """``text`` with the ids of flights that ``caller`` does not own replaced by
        "another operator's flight" (regulators see every id); ``own``: ids of the
        caller's flights being booked (not accepted yet, so not in the owner map)."""
        import re
        if caller.is_regulator:
            return text
        own = set(own)

        def sub(m):
            fid = m.group(0)
            return fid if fid in own or self._owner.get(fid) == caller.operator_id else \
                "another operator's flight"
        return re.sub(r"F-[0-9a-f]{12}", sub, text)

    def _redacted(self, exc: BookingRejectedError, caller: Caller):
        mine = [f for f in exc.flight_ids if self._owner.get(f) == caller.operator_id
                or f not in self._owner]
        out = BookingRejectedError(self.redact(exc.reason, caller, own=mine), mine)
        out.__cause__ = None
        return out

    def submit_flight(self, caller: Caller, request_id: str, req, meta: dict,
                      deadline_s: float | None = None, digest: str | None = None, *,
                      plan_id: str | None = None, route_digest: str | None = None,
                      info: dict | None = None):
        """Plan, place, check and persist one flight; ``(FlightRecord, replayed)``.

        ``req`` is a :class:`planner.route.RouteRequest` (its ``flight_id`` is replaced);
        ``meta`` holds ``priority``, ``max_delay_s`` and ``speeds`` (a dict);
        ``digest`` identifies the request (a retry must carry the same one).
        ``plan_id`` books a held plan (:meth:`hold_plan`) instead of planning; ``req``
        and ``meta`` may then be ``None`` (the plan's are used) or must come with
        ``route_digest`` equal to the plan's. ``info``, when given, receives
        ``replanned`` (bool) and ``plan_used`` (bool).
        """
        self._require_operator(caller)
        if not request_id:
            raise ValueError("request_id is required (an idempotency key: reuse it when "
                             "retrying the same submit)")
        # one submit of a request at a time: a retry racing its original waits for it
        # instead of booking against it
        key = (caller.operator_id, request_id)
        while True:
            with self._state:
                running = self._pending.get(key)
                if running is None:
                    mine = self._pending[key] = threading.Event()
                    break
            left = None if deadline_s is None else max(0.0, deadline_s - time.monotonic())
            if not running.wait(timeout=left):
                self._check_deadline(deadline_s, "the original request finished")
        try:
            # looked up with the request's slot held: the submit that held it before
            # released it only after its commit, so a request booked by now is found
            # here (and one submit cannot reserve against its own original's flight)
            old = self._replay(self.store.find_request(caller.operator_id, request_id),
                               request_id, digest)
            if old is not None:
                return old, True
            return self._submit_once(caller, request_id, req, meta, deadline_s, digest,
                                     plan_id, route_digest, info)
        except BookingRejectedError as exc:
            raise self._redacted(exc, caller) from None
        finally:
            with self._state:
                self._pending.pop(key, None)
            mine.set()

    def _take_plan(self, caller, plan_id, req, route_digest):
        """The held plan ``plan_id`` of ``caller`` or ``None`` (expired, with ``req``
        to plan instead); errors for another operator's plan, a different request, or
        an expired plan without a request."""
        from skytwin.server.plans import PlanExpiredError
        try:
            hp = self.plans.take(plan_id, caller.operator_id,
                                 route_digest if req is not None else None)
        except ValueError:
            raise LimitError(f"route differs from the request plan "
                             f"{echo(plan_id, self.limits.echo_chars)} was made for; send "
                             "the same route or leave it unset") from None
        except PermissionError:
            raise NotOwnerError(f"plan {echo(plan_id, self.limits.echo_chars)} was made "
                                "by another operator") from None
        except PlanExpiredError:
            if req is None:
                raise BookingRejectedError(
                    f"plan {echo(plan_id, self.limits.echo_chars)} is unknown or expired "
                    f"(plans are held {self.limits.plan_hold_s:g} s and booked once); "
                    "plan again or send the route with the plan_id") from None
            return None
        return hp

    def _submit_once(self, caller, request_id, req, meta, deadline_s, digest=None,
                     plan_id=None, route_digest=None, info=None):
        from dataclasses import replace
        info = {} if info is None else info
        info.update(replanned=False, plan_used=False)
        self._check_deadline(deadline_s, "planning")
        hp = None
        if plan_id:
            hp = self._take_plan(caller, plan_id, req, route_digest)
            if hp is None:
                info["replanned"] = True
            else:
                req, meta = hp.req, hp.meta
                if not self.ground.current(hp.route):   # a derived zone changed since
                    hp = None
                    info["replanned"] = True
        elif req is None:
            raise ValueError("route is required (or a plan_id from PlanRoute)")
        self._check_departure(req)
        req = replace(req, flight_id=self._new_id())
        meta = dict(meta, **_request_meta(req))
        route = hp.route if hp is not None else self.plan(req, caller)
        info["exposure"] = route.exposure      # issue 13: reported, not stored
        traj = self._trajectory(route, meta, req.flight_id)
        self._check_deadline(deadline_s, "booking")
        rec = None
        while True:
            try:
                out = self._reserve(caller, request_id, digest, req, meta, traj,
                                    deadline_s, route.footprints_checked_xyz)
            except BookingRejectedError as exc:
                # the held plan may only have failed because a zone changed since
                # it was made: plan again (once), outside the lock
                if hp is None or self._zone_gen == hp.zone_generation \
                        or "no-fly volume" not in exc.reason:
                    raise
                out = None
            if out is not None:
                if out[0] == "replay":
                    return out[1], True
                _, p, rec = out
                break
            hp = None
            info["replanned"] = True
            route = self.plan(req, caller)
            info["exposure"] = route.exposure
            traj = self._trajectory(route, meta, req.flight_id)
            self._check_deadline(deadline_s, "booking")
        info["plan_used"] = not info["replanned"]
        fid = p.trajectory.flight_id
        try:                                 # persist outside the lock (group commit)
            if rec is None:
                rec = self.store.add_flight(self._record(caller, request_id, p, req,
                                                         meta, digest))
        except BaseException as exc:
            self._release_unstored([fid], exc)
            raise
        if rec.flight_id != fid:             # a concurrent retry booked it first
            self._release([fid])
            return self._replay(rec, request_id, digest), True
        with self._state:
            self._publish("flight_accepted", caller.name, _flight_bbox(rec), flight=rec)
        return rec, False

    def _reserve(self, caller, request_id, digest, req, meta, traj, deadline_s,
                 checked_xyz=None):
        """Place, check and reserve one flight: ``("replay", record)`` when another
        instance booked its request meanwhile (shared store), else ``("placed",
        placement, record)`` with the record ``None`` unless a shared store committed it
        already.

        With SQLite the route validator runs after the reservation, outside the
        partitions (early release): under the partitions only what depends on the other
        flights (place, then the verifier against the flights near it), then the
        reservation; the validator (buildings, zones, speeds, the AGL ceiling: none of
        which depends on other flights) runs with the booking gate still held, so no
        zone changes meanwhile. A booking placed meanwhile in the same partitions sees
        the reservation, so it is placed around a flight that may yet be refused:
        conservative, never the other way round. A refused reservation is released
        before anything is persisted or acknowledged; a refused layer shift falls back
        to delays only, as in :meth:`_place_checked`. With a shared store everything,
        the commit included, stays inside the database's lock. ``checked_xyz``: see
        :meth:`_rule_problems` (a held plan's building tests ran where it was made)."""
        from skytwin.planner.deconflict import place
        from skytwin.server.partitions import IndexView
        fid = traj.flight_id

        def replayed():
            return self._replay(self.store.find_request(caller.operator_id, request_id),
                                request_id, digest)

        def reserve(placement):
            self._check_deadline(deadline_s, "booking")
            self.index.accept(placement.trajectory)
            with self._state:
                self._owner[fid] = caller.operator_id

        if self._shared:
            with self._booking([traj]):
                old = replayed()
                if old is not None:
                    return "replay", old
                p = self._place_checked(traj, req.speeds,
                                        authorisations=caller.authorisations)
                reserve(p)
                try:             # commit before another instance books
                    return "placed", p, self.store.add_flight(self._record(
                        caller, request_id, p, req, meta, digest))
                except BaseException as exc:
                    self._release_unstored([fid], exc)
                    raise
        # (no look-up of the request here, unlike the shared store's path: in one process
        # :meth:`submit_flight` looked it up holding the request's slot, which every
        # other submit of it waits for; batch members' ids contain '#', which the API
        # refuses in a SubmitFlight's, and the store's insert returns an earlier record
        # for a key anyway: :meth:`_submit_once` then releases this reservation)
        with self._book.shared():
            for delays_only in (False, True):
                with self._booking([traj], gate=False):
                    p = place(traj, IndexView(self.index, self._delay_only)
                              if delays_only else self.index)
                    if p.trajectory is None:
                        raise BookingRejectedError(f"flight {fid}: {p.reason}", [fid])
                    shifted = p.choice.layer_shift != 0
                    problems = self._conflict_problems(p.trajectory)
                    if not problems:
                        reserve(p)
                if not problems:
                    try:
                        problems = self._rule_problems(
                            p.trajectory, req.speeds, shifted, checked_xyz,
                            authorisations=caller.authorisations)
                    except BaseException:
                        self._release([fid])
                        raise
                    if not problems:
                        return "placed", p, None
                    self._release([fid])
                if not shifted:    # delays only are a subset of the options
                    raise BookingRejectedError(f"flight {fid} failed the final checks: "
                                               f"{'; '.join(problems[:3])}", [fid])
        raise AssertionError("unreachable: the delays-only placement is never shifted")

    def _release_unstored(self, flight_ids, exc: BaseException) -> None:
        """Free the reservations of a write that failed with ``exc``, unless its commit
        failed (:class:`server.store.CommitUncertainError`): then its rows may be on disk
        although nobody was told, so their space stays reserved (conservative: no later
        booking can overlap a flight the store may hold) until a restart rebuilds the
        index from what the store does hold. A retry of the request finds the rows if
        they are there, and is otherwise placed around the reservation."""
        from skytwin.server.store import CommitUncertainError
        if isinstance(exc, CommitUncertainError):
            log.warning("commit outcome unknown; flights %s stay reserved until a restart: "
                        "%s", ", ".join(flight_ids), exc)
            with self._state:
                self._uncertain.update(flight_ids)
            return
        self._release(flight_ids)

    def _release(self, flight_ids) -> None:
        """Free reservations that were never persisted."""
        with self._state:
            for fid in flight_ids:
                if fid in self.index:
                    self.index.cancel(fid)
                self._owner.pop(fid, None)

    def submit_batch(self, caller: Caller, request_id: str, reqs: list, metas: list,
                     max_solve_s: float | None = None, deadline_s: float | None = None,
                     digest: str | None = None):
        """Plan and book a fleet together (all or nothing); ``(records, replayed, status)``.

        ``digest`` identifies the whole batch request (stored with every member)."""
        try:
            return self._submit_batch(caller, request_id, reqs, metas, max_solve_s,
                                      deadline_s, digest)
        except BookingRejectedError as exc:
            raise self._redacted(exc, caller) from None

    def _submit_batch(self, caller, request_id, reqs, metas, max_solve_s, deadline_s,
                      digest):
        from dataclasses import replace

        from skytwin.planner.deconflict import SolveParams, deconflict
        from skytwin.planner.trajectory import Trajectory
        self._require_operator(caller)
        if not request_id:
            raise ValueError("request_id is required for a batch")
        if not reqs:
            raise ValueError("a batch needs at least one route")
        if len(reqs) > self.limits.max_batch:
            raise RequestTooLargeError(f"batch of {len(reqs)} routes is over the limit of "
                                       f"{self.limits.max_batch}; split it")
        rids = [f"{request_id}#{n}" for n in range(len(reqs))]
        old = self._find_batch(caller, rids, digest)
        if old is not None:
            return old, True, "REPLAYED"
        self._check_deadline(deadline_s, "planning")
        for r in reqs:
            self._check_departure(r)
        reqs = [replace(r, flight_id=self._new_id()) for r in reqs]
        metas = [dict(m, **_request_meta(r)) for r, m in zip(reqs, metas, strict=True)]
        if self._plan_pool is not None and len(reqs) > 1:
            # planning processes: the members are planned on all of them at once
            from concurrent.futures import ThreadPoolExecutor
            ex = ThreadPoolExecutor(self._plan_pool.processes,
                                    thread_name_prefix="skytwin-batch-plan")
            try:
                futs = [ex.submit(self.plan, r, caller) for r in reqs]
                routes = [f.result() for f in futs]
            finally:       # a failed member: the members not started are dropped
                ex.shutdown(wait=True, cancel_futures=True)
        else:
            routes = [self.plan(r, caller) for r in reqs]
        trajs = [self._trajectory(route, m)
                 for route, m in zip(routes, metas, strict=True)]
        budget = min(max_solve_s or self.limits.max_solve_s, self.limits.max_solve_s)
        if deadline_s is not None:
            budget = max(0.5, min(budget, 0.5 * (deadline_s - time.monotonic())))
        self._check_deadline(deadline_s, "deconfliction")
        res = deconflict(trajs, sep=self.sep, options=self._delay_only,
                         params=SolveParams(max_time_in_seconds=budget, num_workers=1))
        if res.unplaced:
            fid, why = next(iter(res.unplaced.items()))
            raise BookingRejectedError(f"batch rejected: {len(res.unplaced)} flight(s) "
                                       f"cannot be placed, e.g. {fid}: {why}",
                                       list(res.unplaced))
        by_id = {t.flight_id: t for t in res.trajectories}
        order = sorted(range(len(trajs)), key=lambda n: (by_id[trajs[n].flight_id].t_start_s, n))
        recs = None
        # fair booking: with SQLite the batch is placed in chunks of BATCH_CHUNK, and the
        # booking lock is released between chunks so that other bookings interleave
        # (module docstring, Batches); with a shared store the commit must happen inside
        # the database's lock, so the batch is placed in one go
        chunk = len(order) if self._shared else BATCH_CHUNK
        placed: dict[int, object] = {}
        from skytwin.planner.deconflict import Choice, Placement
        try:
            for c0 in range(0, len(order), chunk):
                if c0:   # threading.Lock is not fair: give a waiting booking the lock
                    time.sleep(BATCH_YIELD_S)
                members = []
                for n in order[c0:c0 + chunk]:
                    t0 = trajs[n]
                    ch = res.choices[t0.flight_id]
                    tr = by_id[t0.flight_id]
                    members.append((n, ch, Trajectory(
                        tr.flight_id, tr.xyz_m, tr.t_s, t0.priority,
                        max(0.0, t0.max_delay_s - ch.delay_s), dict(t0.meta))))
                # the chunk's space-time partitions only (server.partitions)
                with self._booking([m[2] for m in members]):
                    if c0 == 0:
                        old = self._find_batch(caller, rids, digest)
                        if old is not None:
                            return old, True, "REPLAYED"
                    for n, ch, tr in members:
                        p = self._place_checked(tr, reqs[n].speeds,
                                                authorisations=caller.authorisations)
                        p = Placement(Choice(tr.flight_id, ch.delay_s + p.choice.delay_s,
                                             ch.layer_shift + p.choice.layer_shift, 0),
                                      p.trajectory)
                        self.index.accept(p.trajectory)   # later members see it
                        with self._state:
                            self._owner[p.trajectory.flight_id] = caller.operator_id
                        placed[n] = p
                    if c0 + chunk >= len(order):
                        self._check_deadline(deadline_s, "booking")
                        if self._shared:     # commit before another instance books
                            recs = self.store.add_flights([
                                self._record(caller, rids[n], placed[n], reqs[n],
                                             metas[n], digest)
                                for n in range(len(reqs))])
        except BaseException as exc:
            self._release_unstored([p.trajectory.flight_id for p in placed.values()], exc)
            raise
        fids = [p.trajectory.flight_id for p in placed.values()]
        try:                                 # persist outside the lock, all or nothing
            recs = recs if recs is not None else self.store.add_flights([
                self._record(caller, rids[n], placed[n], reqs[n], metas[n], digest)
                for n in range(len(reqs))])
        except BaseException as exc:
            self._release_unstored(fids, exc)
            raise
        ours = [r.flight_id == placed[n].trajectory.flight_id for n, r in enumerate(recs)]
        if not all(ours):
            # a concurrent submit of the same batch id stored (some of) its members first:
            # free only the reservations the store did not keep; a member stored as ours
            # (the other batch was shorter) is booked, so it stays in the index and is
            # announced, then the request is answered as a retry (or refused as a
            # different one)
            self._release([placed[n].trajectory.flight_id
                           for n, mine in enumerate(ours) if not mine])
            with self._state:
                for r, mine in zip(recs, ours, strict=True):
                    if mine:
                        self._publish("flight_accepted", caller.name, _flight_bbox(r),
                                      flight=r)
            self._replay(recs[0], request_id, digest)
            return list(recs), True, "REPLAYED"
        with self._state:
            for r in recs:
                self._publish("flight_accepted", caller.name, _flight_bbox(r), flight=r)
        return list(recs), False, res.status

    def _find_batch(self, caller, rids, digest=None):
        first = self.store.find_request(caller.operator_id, rids[0])
        if first is None:
            return None
        self._replay(first, rids[0].rsplit("#", 1)[0], digest)
        recs = [self.store.find_request(caller.operator_id, r) for r in rids]
        for r in recs:
            self._announce_landed(r)
        return recs

    def get_flight(self, caller: Caller, flight_id: str):
        try:
            rec = self.store.get_flight(flight_id)
        except KeyError:
            rec = None
        if rec is None:
            raise NotFoundError(f"no flight with id {flight_id!r}")
        if not caller.is_regulator and rec.operator_id != caller.operator_id:
            raise NotOwnerError(f"flight {flight_id} belongs to another operator")
        return rec

    def list_flights(self, caller: Caller, operator_id=None, status=None, t0_s=None,
                     t1_s=None, page_size=100, page_token=None):
        """One page of flights; ``(records, next_page_token or "")``."""
        if not caller.is_regulator:
            if operator_id and operator_id != caller.operator_id:
                raise NotOwnerError(f"operator {caller.operator_id!r} may not list the "
                                    f"flights of operator {operator_id!r}")
            operator_id = caller.operator_id
        page_size = page_size or 100
        if page_size > self.limits.max_page_size:
            raise RequestTooLargeError(f"page_size {page_size} is over the limit of "
                                       f"{self.limits.max_page_size}")
        from skytwin.server.store import StoreNotFoundError
        try:
            recs = list(self.store.list_flights(operator_id=operator_id or None,
                                                status=status, t0_s=t0_s, t1_s=t1_s,
                                                limit=page_size + 1,
                                                after_flight_id=page_token or None))
        except StoreNotFoundError:
            raise ValueError(f"page_token {page_token!r} is not a token this server "
                             "returned") from None
        if len(recs) > page_size:
            recs = recs[:page_size]
            return recs, recs[-1].flight_id
        return recs, ""

    def cancel_flight(self, caller: Caller, flight_id: str, reason: str = ""):
        """Cancel a flight. Operators cancel their own; a regulator may cancel any
        flight but must give a ``reason`` when it is another operator's (every flight
        is an operator's), which is stored with the flight and sent in the event."""
        with self._state:
            rec = self.get_flight(caller, flight_id)
            if rec.status == CANCELLED:
                return rec
            if caller.is_regulator and rec.operator_id != caller.operator_id \
                    and not (reason or "").strip():
                raise ValueError(f"reason is required: a regulator cancelling operator "
                                 f"{rec.operator_id!r}'s flight {flight_id} must say why "
                                 "(it is recorded and sent to the operator)")
            rec = self.store.cancel_flight(flight_id, self.clock(), actor=caller.name,
                                           reason=reason or None)
            if self._shared:      # published from the feed
                if flight_id in self.index:
                    self.index.cancel(flight_id)
                self._sync_locked()
                return rec
            if flight_id in self.index:
                self.index.cancel(flight_id)
            self._owner.pop(flight_id, None)
            self._publish("flight_cancelled", caller.name, _flight_bbox(rec), flight=rec,
                          reason=reason or "")
        return rec

    # ---------------------------------------------------------------- change log
    def publish_flight_state(self, flight_id: str, actor: str, to_state: str,
                             reason: str = "") -> None:
        """Publish a lifecycle transition already stored by live operations (its
        ``flight_state`` event row is written with it, so sequence numbers stay
        above every number handed out before a restart)."""
        if self._shared:          # published from the feed
            with self._state:
                self._sync_locked()
            return
        rec = self.store.get_flight(flight_id)
        if rec is not None:
            self._publish("flight_state", actor, _flight_bbox(rec), flight=rec,
                          reason=reason, flight_state=to_state)

    def _publish(self, kind, actor, bbox, zone=None, flight=None, affected=(),
                 affected_operators=None, reason="", flight_state="", seq=None):
        with self._state:
            self._publish_locked(kind, actor, bbox, zone, flight, affected,
                                 affected_operators, reason, flight_state, seq)

    def _publish_locked(self, kind, actor, bbox, zone, flight, affected,
                        affected_operators, reason, flight_state, seq):
        if seq is None and self._shared:   # everything is published from the feed
            self._sync_locked()
            return
        if seq is None:
            self._seq += 1
            seq = self._seq
        ops = tuple(affected_operators) if affected_operators is not None else \
            tuple(self._owner.get(f, "") for f in affected)
        ch = Change(seq, kind, self.clock(), actor, tuple(bbox), zone, flight,
                    tuple(affected), ops, reason, flight_state)
        self._changes.append(ch)
        with self._subs_lock:
            subs = list(self._subs)
        for cb in subs:
            try:
                cb(ch)
            except Exception:   # a broken watcher must not break booking
                log.exception("change subscriber failed")

    @property
    def sequence(self) -> int:
        """Sequence number of the latest change (0 before any)."""
        return self._seq

    def subscribe(self, callback, since_sequence: int | None = None) -> tuple[int, list]:
        """Register ``callback(change)``; ``(current sequence, retained changes after
        since_sequence)``, atomically with respect to new changes (``None``: live only;
        ``0``: every retained change).

        Changes are retained in memory only (the last ``change_log_size``); after a
        restart the backlog is empty and a client resuming from an older sequence should
        re-list flights and zones (the durable record is the store's)."""
        with self._state:
            with self._subs_lock:
                self._subs.append(callback)
            if since_sequence is None:
                return self._seq, []
            return self._seq, [c for c in self._changes if c.sequence > since_sequence]

    def unsubscribe(self, callback) -> None:
        with self._subs_lock:
            if callback in self._subs:
                self._subs.remove(callback)

    def on_close(self, fn) -> None:
        """Call ``fn()`` first when the core closes (e.g. a transport's thread pool
        that must finish its calls before the store closes)."""
        self._closers.append(fn)

    def close(self) -> None:
        for fn in self._closers:
            try:
                fn()
            except Exception:   # noqa: BLE001 - closing goes on
                log.exception("close hook failed")
        self._closers.clear()
        if self._plan_pool is not None:
            self._plan_pool.close()
        if self._listener is not None:
            self._stop_listen.set()
            self._listener.join(5)
        self.store.close()


def _request_meta(req) -> dict:
    """What the operator asked for, kept with the flight (JSON-ready)."""
    return {"start_lonlat": list(req.start_lonlat), "goal_lonlat": list(req.goal_lonlat),
            "requested_depart_s": req.depart_s}


def _flight_bbox(rec) -> tuple:
    ll = rec.lonlat_deg
    return (float(ll[:, 0].min()), float(ll[:, 1].min()), float(ll[:, 0].max()),
            float(ll[:, 1].max()))


def default_city() -> Path:
    """The bundled small city (Helsinki centre)."""
    return Path(__file__).resolve().parents[1] / "fixtures" / "city" / "helsinki_centre.geojson"

