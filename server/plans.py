"""Held plans: PlanRoute once, SubmitFlight books exactly that plan (issue 14, item 1).

Design
------
Before this module every delivery was planned twice: the operator's PlanRoute preview,
then SubmitFlight planned the same request again before placing it. The 3D search is
the expensive part of a booking (about 13 ms of CPU per call on the bundled city; the
booking critical section is a fraction of that), so planning twice halved the booking
rate.

A :class:`PlanCache` holds each operator's recent previews:

* **Handle.** PlanRoute (called by an operator) stores the planned route under a
  random ``plan_id`` (``P-`` + 16 hex digits, 64 random bits: not guessable) and
  returns it with the time it expires. Regulators plan previews without a handle (they
  do not book).
* **Bound to the operator.** A handle is usable only by the operator that planned it;
  another operator gets :class:`~server.service.NotOwnerError` (PERMISSION_DENIED) and
  learns nothing about the plan.
* **Bound to the request.** The handle remembers the SHA-256 of the ``RouteRequest``
  message it was planned for. SubmitFlight may send the same ``route`` again (it must
  then be byte-identical in its deterministic serialisation, else INVALID_ARGUMENT) or
  leave ``route`` unset (the held request is used). A departure time left unset meant
  "now" when the plan was made, and the booking departs then (within
  ``past_departure_s``, as any booking).
* **Held for a documented time, bounded count.** ``plan_hold_s`` (limits file,
  default 120 s), at most ``max_held_plans`` in all and ``max_held_plans_per_operator``
  per operator (the oldest of that operator's plans makes room first, so one busy
  operator cannot evict another's plans); about 5-20 kB per plan (a route of tens of
  waypoints), so the default 20,000 plans are at most a few hundred MB and typically
  tens of MB. Expired plans are dropped lazily on every put and take.
* **Used once.** A booking attempt consumes the handle, whatever its outcome (a retry with the same request id is
  replayed from the store as before; a new request id with a consumed handle and a
  ``route`` falls back to planning).

What SubmitFlight re-checks (``ServiceCore.submit_flight``): exactly what can have
changed since the plan. Buildings and the twin are immutable, so the planner's own
exact check of the geometry still holds; the booking places the held trajectory
against the accepted flights *now* (``planner.deconflict.place``) and runs the same
final checks as every booking (the route validator with the zones active now, and
``planner.verify`` against the accepted flights near it). It re-plans only when it
must: when a zone created or changed since the plan makes those checks fail, or when
the handle expired or was evicted and the request carries its ``route``.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

__all__ = ["HeldPlan", "PlanCache", "PlanExpiredError"]


class PlanExpiredError(LookupError):
    """No held plan under this id (never issued, expired, evicted or already booked)."""


@dataclass(frozen=True)
class HeldPlan:
    """One held preview: who planned it, for which request, and the planned route."""

    plan_id: str
    operator_id: str
    route_digest: str     # SHA-256 hex of the RouteRequest message it was planned for
    req: object           # planner.route.RouteRequest
    meta: dict            # priority, max_delay_s, speeds (as SubmitFlight needs them)
    route: object         # planner.route.Route
    zone_generation: int  # ServiceCore zone generation when planned
    expires_mono_s: float  # time.monotonic() deadline
    expires_unix_s: float  # the same instant on the service clock (for the caller)


class PlanCache:
    """Thread-safe bounded store of :class:`HeldPlan` (module docstring).

    Parameters
    ----------
    hold_s : float
        How long a plan is held [s].
    max_plans, max_per_operator : int
        Bounds on the plans held in all and per operator.
    clock : callable
        Unix seconds (the service clock), for the expiry time returned to callers.
    """

    def __init__(self, hold_s: float, max_plans: int, max_per_operator: int,
                 clock=time.time):
        self.hold_s = float(hold_s)
        self.max_plans = max(1, int(max_plans))
        self.max_per_operator = max(1, int(max_per_operator))
        self.clock = clock
        self._lock = threading.Lock()
        self._plans: OrderedDict[str, HeldPlan] = OrderedDict()   # oldest first
        self._per_op: dict[str, OrderedDict] = {}
        self.evicted = 0

    def __len__(self) -> int:
        with self._lock:
            return len(self._plans)

    def _drop(self, plan_id: str) -> None:
        hp = self._plans.pop(plan_id, None)
        if hp is not None:
            ops = self._per_op.get(hp.operator_id)
            if ops is not None:
                ops.pop(plan_id, None)
                if not ops:
                    del self._per_op[hp.operator_id]

    def _expire(self, now_mono: float) -> None:
        while self._plans:
            pid, hp = next(iter(self._plans.items()))
            if hp.expires_mono_s > now_mono:
                break
            self._drop(pid)

    def put(self, operator_id: str, route_digest: str, req, meta: dict, route,
            zone_generation: int) -> HeldPlan:
        """Hold a plan; returns it (with its new ``plan_id`` and expiry)."""
        now = time.monotonic()
        hp = HeldPlan("P-" + secrets.token_hex(8), operator_id, route_digest, req,
                      dict(meta), route, int(zone_generation), now + self.hold_s,
                      self.clock() + self.hold_s)
        with self._lock:
            self._expire(now)
            ops = self._per_op.setdefault(operator_id, OrderedDict())
            while len(ops) >= self.max_per_operator:
                self._drop(next(iter(ops)))
                self.evicted += 1
            while len(self._plans) >= self.max_plans:
                self._drop(next(iter(self._plans)))
                self.evicted += 1
            self._plans[hp.plan_id] = hp
            self._per_op.setdefault(operator_id, OrderedDict())[hp.plan_id] = None
        return hp

    def take(self, plan_id: str, operator_id: str, route_digest: str | None = None
             ) -> HeldPlan:
        """Remove and return the plan; :class:`PlanExpiredError` when there is none,
        ``PermissionError`` when it belongs to another operator and ``ValueError`` when
        ``route_digest`` is given and differs from the plan's (both leave it held)."""
        with self._lock:
            self._expire(time.monotonic())
            hp = self._plans.get(plan_id)
            if hp is None or hp.expires_mono_s <= time.monotonic():
                raise PlanExpiredError(plan_id)
            if hp.operator_id != operator_id:
                raise PermissionError(plan_id)
            if route_digest is not None and route_digest != hp.route_digest:
                raise ValueError(plan_id)
            self._drop(plan_id)
            return hp
