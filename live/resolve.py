"""Tactical resolution: who gives way, and the re-planned remainder as an advisory.

Definition
----------
For a predicted loss of separation between flights A and B (:mod:`.tactical`), one of
them *gives way*; the rule, in order:

1. a **contingent** flight never gives way (it is not expected to follow any plan), so
   the other one does;
2. the flight with the lower **priority** gives way;
3. at equal priority, the **nonconforming** one gives way (the conforming one is where
   everyone else expects it);
4. otherwise the one whose resolution is **cheapest** (smallest arrival delay against
   its approved plan; ties: the flight id, for determinism) gives way.

The giver's remaining route is re-planned from its *predicted position* at
``now + reaction_s`` (on its approved trajectory when conforming, extrapolated from its
measured state otherwise) to its approved landing point, with the same
:class:`~skytwin.planner.route.Planner` that books flights (buildings with clearance,
altitude limits, every zone active during the new flight). Candidates, cheapest first:
for each altitude band of :class:`ResolutionParams` (``min_agl_m``, e.g. 25 / 85 m:
the planner flies as low as it may, so a band is a different cruise level), the route
as planned and the same route after a hover of ``hold_s`` at the predicted position. A
candidate is kept only when

* the exact validator (:class:`~skytwin.planner.validate.RouteValidator`, independent
  of the planner's checks) finds no problem in the new route with its real times and
  every zone active then (buildings + clearance, vertical take-off and landing, 1 cm
  lattice, speed limits, zones), and
* no conflict remains between the new trajectory and everyone else's remaining plans
  under the strategic separation (30 m / 10 m / 5 s buffer by default): each candidate
  is screened with the booking detector (:mod:`skytwin.planner.conflicts`, numba
  space-time buckets, only pairs with the new trajectory: a few ms for a thousand
  flights), and the one kept is re-checked by the independent verifier
  (:func:`~skytwin.planner.verify.verify`, which shares no code with the detector).
  Verifying every candidate with the verifier took 0.4 s each at 1,000 flights (its
  dense sampling of every nearby plan), which made a zone re-plan of 18 flights take
  48 s; screening first and verifying once brings that to the planner's own cost.

The result is an :class:`Advisory`: the full trajectory the drone should fly from
``issued_s`` (the prediction up to the start point, the hover, the new route), the
validated route part, the added delay and what was tried. A zone created while flights
are airborne uses the same re-planning for every flight whose remaining trajectory
enters it while active (:meth:`Resolver.zone_reroutes`).

Algorithm
---------
1. ``choose_giver`` applies rules 1-3; on a tie both are re-planned (rule 4).
2. ``Resolver.replan``: start point and prefix from the prediction; for each band one
   planner call (depart at the start time); for each hold, shift the route in time,
   validate it, verify it against the nearby remaining plans (bounding box and time
   filter first); stop at the first hold that passes in each band and keep the band
   with the least arrival delay.
3. If every candidate fails, :class:`~skytwin.live.errors.ResolutionError` says what
   each band hit (planner refusal, validator problem, or remaining conflict).

An advisory remembers the approved trajectory it was planned from (``basis``): its
prefix follows that trajectory up to the start point, so it can only be flown by a
drone still on it. The engine refuses the acceptance of an advisory whose basis is no
longer the flight's approved trajectory (another advisory was accepted in between).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import numpy as np

from skytwin.airspace.errors import OutsideTwinError
from skytwin.airspace.zones import ground_range_from_grid, segment_intersects
from skytwin.live.errors import LiveInputError, ResolutionError
from skytwin.planner.conflicts import Separation, cross_pairs, pack_segments, \
    shift_intervals
from skytwin.planner.route import PlanError, Planner, RouteRequest, StartBlocked
from skytwin.planner.smooth import quantize
from skytwin.planner.timing import SpeedProfile
from skytwin.planner.trajectory import Trajectory
from skytwin.planner.validate import RouteValidator
from skytwin.planner.verify import verify

__all__ = ["Advisory", "LiveFlight", "ResolutionParams", "Resolver", "choose_giver",
           "remaining", "state_trajectory"]

_IDS = itertools.count(1)


@dataclass(frozen=True)
class ResolutionParams:
    """Knobs of the re-planning (see module docstring).

    reaction_s : time from the decision to the start of the new route [s] (the advisory
        reaches the operator and the drone turns; 3 s covers a 1 s report cycle and a
        round trip).
    bands_min_agl_m : cruise floors tried, in order. The defaults are tactical levels
        between the 30 m spaced levels at which flights are usually booked (10, 40, 70,
        100 m): 25 and 85 m are 15 m from either neighbour (more than the 10 m vertical
        minimum), so a re-planned drone meets little booked traffic there. Two bands,
        not more: the planner keeps its whole-twin tables (5 pyramid levels and the
        reach labels of a 10 km twin: 6 entries per band) in a cache of 16 entries,
        and three or more bands evict each other on every re-plan (measured: 1.4 s of
        pyramid and 1.6 s of labels rebuilt per band per re-plan).
    holds_s : hovers tried at the start point before the new route.
    zone_holds_s : the hovers tried for a zone re-plan (wider: a drone heading into a
        closed volume must get an instruction, and a long remainder through dense
        traffic rarely has room at the few holds of ``holds_s``; screening every hold
        is one detector call).
    land_short : when no reroute around a zone keeps clear of everyone, stop on the
        approved path before the zone and land there vertically (the last resort,
        checked like any advisory).
    stop_margin_s : a land-short stop is at least this long (of the approved path)
        before the first moment inside the zone.
    good_enough_s : an advisory adding at most this delay ends the search (later bands
        are not planned).
    ceiling_agl_m : the rules' ceiling.
    separation : minima for the check against others' remaining plans.
    """

    reaction_s: float = 3.0
    bands_min_agl_m: tuple = (25.0, 85.0)
    holds_s: tuple = (0.0, 5.0, 10.0, 15.0, 20.0, 30.0, 45.0, 60.0, 90.0)
    zone_holds_s: tuple = tuple(float(h) for h in range(0, 125, 5))
    land_short: bool = True
    stop_margin_s: float = 2.0
    good_enough_s: float = 30.0
    ceiling_agl_m: float = 120.0
    separation: Separation = field(default_factory=Separation)

    def __post_init__(self):
        if not (math.isfinite(self.reaction_s) and self.reaction_s >= 0):
            raise LiveInputError("reaction_s must be >= 0")
        if not self.bands_min_agl_m or not self.holds_s:
            raise LiveInputError("need at least one band and one hold")


@dataclass
class LiveFlight:
    """What resolution needs to know about one flight.

    Attributes
    ----------
    flight_id : str
    trajectory : Trajectory, the approved one
    priority : float (higher = more important)
    state : str, lifecycle state (``activated``, ``nonconforming``, ``contingent``,
        ``accepted``)
    measured_t_s, measured_xyz_m, measured_vel_mps : newest accepted report (optional)
    speeds : SpeedProfile of the drone
    """

    flight_id: str
    trajectory: Trajectory
    priority: float = 1.0
    state: str = "activated"
    measured_t_s: float | None = None
    measured_xyz_m: np.ndarray | None = None
    measured_vel_mps: np.ndarray | None = None
    speeds: SpeedProfile = field(default_factory=SpeedProfile)

    @property
    def follows_plan(self) -> bool:
        return self.state in ("activated", "accepted") or self.measured_t_s is None

    def position_at(self, t_s: float) -> np.ndarray:
        """Predicted position: the plan when conforming, else the measured state."""
        if self.follows_plan:
            return self.trajectory.position_at(t_s)
        v = np.zeros(3) if self.measured_vel_mps is None else \
            np.nan_to_num(np.asarray(self.measured_vel_mps, np.float64))
        return np.asarray(self.measured_xyz_m, np.float64) + v * max(
            0.0, t_s - self.measured_t_s)


@dataclass
class Advisory:
    """A re-planned remainder for one flight, validated and conflict-checked.

    Attributes
    ----------
    advisory_id, flight_id : str
    reason : ``"conflict"`` or ``"zone"``
    cause : ids of the other flights or of the zone
    issued_s, start_s : decision time and start of the new route [s]
    trajectory : Trajectory from ``issued_s`` to landing (becomes the approved
        trajectory when the operator accepts)
    route_xyz_m, route_t_s : the validated route part (from the start point)
    hold_s, added_delay_s : hover before the route; arrival later than approved [s]
    min_agl_m : the cruise floor of the band used
    validation : the validator's verdict (``"valid"``)
    tried : candidates examined
    kind : ``"reroute"`` (a new route to the approved landing point) or
        ``"land_short"`` (the approved path up to a stop before a zone, then a
        vertical landing there: :meth:`Resolver.land_short`)
    """

    advisory_id: str
    flight_id: str
    reason: str
    cause: tuple
    issued_s: float
    start_s: float
    trajectory: Trajectory
    route_xyz_m: np.ndarray
    route_t_s: np.ndarray
    hold_s: float
    added_delay_s: float
    min_agl_m: float
    validation: str = "valid"
    tried: int = 0
    basis: Trajectory | None = field(default=None, repr=False, compare=False)
    kind: str = "reroute"          # or "land_short" (stops before a zone and lands)


def _summary(failures, per_band: int = 2) -> str:
    """The first ``per_band`` reasons of every band (a band that failed on every hold
    says so once), so that the message names what each band hit."""
    out, seen = [], {}
    for f in failures:
        band = f.split(",")[0].split(":")[0]
        seen[band] = seen.get(band, 0) + 1
        if seen[band] <= per_band:
            out.append(f)
    more = sum(max(0, v - per_band) for v in seen.values())
    return "; ".join(out) + (f" (and {more} more)" if more else "")


def _pairs_with_first(segs, sep, pad_lo_s, pad_hi_s):
    """Candidate pairs between the first trajectory of ``segs`` (owner 0, packed
    first) and the others, never among the others."""
    return cross_pairs(segs, int(np.count_nonzero(segs.owner == 0)), sep, pad_lo_s,
                       pad_hi_s)


def remaining(traj: Trajectory, t_s: float) -> Trajectory | None:
    """The part of ``traj`` from ``t_s`` on (None when it has ended by then).

    Called for every flight of the fleet at each re-plan, so it is built without the
    constructor's checks (a cut of a valid trajectory is valid): 5 us, not 76 us.
    """
    tt = traj.t_s
    t_s = float(t_s)
    if t_s >= tt[-1]:
        return None
    if t_s <= tt[0]:
        return traj
    k = int(np.searchsorted(tt, t_s, side="right"))      # tt[k-1] <= t_s < tt[k]
    xyz0 = traj.xyz_m
    n = tt.shape[0] - k + 1
    xyz = np.empty((n, 3))
    t = np.empty(n)
    a, b = xyz0[k - 1], xyz0[k]
    xyz[0] = a + (b - a) * ((t_s - tt[k - 1]) / (tt[k] - tt[k - 1]))   # as np.interp
    xyz[1:] = xyz0[k:]
    t[0] = t_s
    t[1:] = tt[k:]
    out = object.__new__(Trajectory)
    for name, v in (("flight_id", traj.flight_id), ("xyz_m", xyz), ("t_s", t),
                    ("priority", traj.priority), ("max_delay_s", traj.max_delay_s),
                    ("meta", dict(traj.meta))):
        object.__setattr__(out, name, v)
    return out


def state_trajectory(flight_id: str, t_s: float, xyz_m, vel_mps, horizon_s: float,
                     now_s: float | None = None) -> Trajectory:
    """Constant-velocity trajectory from a measured state over ``horizon_s``."""
    p = np.asarray(xyz_m, np.float64)
    v = np.zeros(3) if vel_mps is None else np.nan_to_num(np.asarray(vel_mps, np.float64))
    t0 = t_s if now_s is None else max(t_s, now_s)
    p0 = p + v * (t0 - t_s)
    return Trajectory(flight_id, [p0, p0 + v * horizon_s], [t0, t0 + horizon_s])


def choose_giver(a: LiveFlight, b: LiveFlight) -> tuple[LiveFlight | None, str]:
    """Rules 1-3 of the module docstring: ``(giver, rule)``; ``(None, "cost")`` = tie."""
    ca, cb = a.state == "contingent", b.state == "contingent"
    if ca != cb:
        return (b if ca else a), "contingent"
    if a.priority != b.priority:
        return (a if a.priority < b.priority else b), "priority"
    na = a.state == "nonconforming"
    nb = b.state == "nonconforming"
    if na != nb:
        return (a if na else b), "conformance"
    return None, "cost"


class Resolver:
    """Re-plans remainders on one twin (one per thread: it owns a Planner)."""

    def __init__(self, twin, zones=None, params: ResolutionParams | None = None, *,
                 planner: Planner | None = None, validator: RouteValidator | None = None):
        self.twin = twin
        self.zones = zones
        self.params = params or ResolutionParams()
        self.planner = planner or Planner(twin, zones)
        self.validator = validator or RouteValidator(twin.buildings, twin.clearance_m)
        self.ground_range = ground_range_from_grid(twin.grid, twin.ground_m)

    # ------------------------------------------------------------------ helpers
    def _zones(self, t0, t1):
        return [] if self.zones is None else list(self.zones.local_zones(t0, t1))

    def _validate(self, xyz, t, speeds):
        rep = self.validator.check(xyz, t, speeds, zones=self._zones(t[0], t[-1]),
                                   ground_range=self.ground_range)
        return rep

    @staticmethod
    def _boxes(others):
        """Space-time boxes of ``others`` as arrays (one pass, then vector filters)."""
        if not others:
            z = np.zeros((0, 3))
            return z, z, np.zeros(0), np.zeros(0)
        # one concatenation and two segmented reductions, not two per flight (the fleet
        # is thousands of flights at every re-plan); min/max are exact either way
        n = np.fromiter((o.t_s.shape[0] for o in others), np.int64, len(others))
        first = np.zeros(len(others), np.int64)
        np.cumsum(n[:-1], out=first[1:])
        xyz = np.concatenate([o.xyz_m for o in others])
        t = np.concatenate([o.t_s for o in others])
        lo = np.minimum.reduceat(xyz, first, axis=0)
        hi = np.maximum.reduceat(xyz, first, axis=0)
        return lo, hi, t[first], t[first + n - 1]

    def _near(self, traj: Trajectory, others, boxes=None):
        sep = self.params.separation
        pad = np.array([sep.horizontal_m, sep.horizontal_m, sep.vertical_m])
        lo = traj.xyz_m.min(axis=0) - pad
        hi = traj.xyz_m.max(axis=0) + pad
        t0 = traj.t_start_s - sep.time_buffer_s
        t1 = traj.t_end_s + sep.time_buffer_s
        olo, ohi, ot0, ot1 = boxes if boxes is not None else self._boxes(others)
        hit = ((ot1 >= t0) & (ot0 <= t1) & np.all(ohi >= lo, axis=1)
               & np.all(olo <= hi, axis=1))
        return [others[k] for k in np.flatnonzero(hit)
                if others[k].flight_id != traj.flight_id]

    def _first_conflict(self, traj: Trajectory, near) -> str | None:
        """Id of a plan in ``near`` that ``traj`` conflicts with (None: none), by the
        booking detector restricted to pairs with ``traj`` (module docstring)."""
        if not near:
            return None
        sep = self.params.separation
        trs = [traj, *near]
        segs = pack_segments(trs)
        pad = np.full(segs.t0.shape[0], 0.5 * sep.time_buffer_s)
        pi, pj = _pairs_with_first(segs, sep, pad, pad)
        if pi.size == 0:
            return None
        lo, hi, ok = shift_intervals(segs, pi, pj, sep)
        b = sep.time_buffer_s
        hit = np.flatnonzero(ok & (lo < b) & (hi > -b))
        if hit.size == 0:
            return None
        own = segs.owner
        k = hit[0]
        other = own[pj[k]] if own[pi[k]] == 0 else own[pi[k]]
        return trs[int(other)].flight_id

    def _holds_clear(self, route: Trajectory, holds, others, boxes) -> np.ndarray:
        """(len(holds),) bool: the route part, delayed by each hold, keeps clear of
        ``others`` (one detector call for every hold: the route's segments are
        widened on the late side by the longest hold, and each segment pair's exact
        shift interval says which holds it rules out; as :func:`planner.deconflict.place`
        does for departure delays)."""
        holds = np.asarray(holds, np.float64)
        sep = self.params.separation
        b = sep.time_buffer_s
        span = Trajectory(route.flight_id, np.vstack([route.xyz_m, route.xyz_m[-1:]]),
                          np.concatenate([route.t_s, [route.t_end_s + holds.max()]]))
        near = self._near(span, others, boxes)
        clear = np.ones(holds.size, bool)
        if not near:
            return clear
        trs = [route, *near]
        segs = pack_segments(trs)
        mine = segs.owner == 0
        pad_lo = np.full(segs.t0.shape[0], 0.5 * b)
        pad_hi = pad_lo.copy()
        pad_hi[mine] += holds.max()
        pi, pj = _pairs_with_first(segs, sep, pad_lo, pad_hi)
        if pi.size == 0:
            return clear
        lo, hi, ok = shift_intervals(segs, pi, pj, sep)
        lo, hi = lo[ok], hi[ok]
        a_is_route = mine[pi[ok]]
        # B later than A by sigma loses separation for sigma in (lo, hi); the route
        # delayed by h: sigma = -h when it is A, +h when it is B, each +- b
        for q, h in enumerate(holds):
            sig = np.where(a_is_route, -h, h)
            if np.any((lo < sig + b) & (hi > sig - b)):
                clear[q] = False
        return clear

    @staticmethod
    def _prefix(flight: LiveFlight, now_s: float, t_r: float, start):
        """What the drone flies from ``now_s`` to ``start`` (reached at ``t_r``):
        ``(xyz (k, 3), t (k,))``, ending at ``start``."""
        traj = flight.trajectory
        if t_r <= traj.t_start_s or (flight.follows_plan and now_s <= traj.t_start_s
                                     and np.allclose(start[:2], traj.xyz_m[0, :2])):
            return np.vstack([start]), np.array([t_r])     # still on the pad: no prefix
        if flight.follows_plan:
            pre = remaining(traj, float(now_s))
            k = pre.t_s < t_r
            return np.vstack([pre.xyz_m[k], start]), np.concatenate([pre.t_s[k], [t_r]])
        return (np.vstack([flight.position_at(float(now_s)), start]),
                np.array([float(now_s), t_r]))

    # ------------------------------------------------------------------ re-plan
    def replan(self, flight: LiveFlight, now_s: float, others=(), *, reason="conflict",
               cause=(), holds=None) -> Advisory:
        """Re-plan ``flight`` from its predicted position (module docstring, step 2).

        ``others`` : remaining plans (Trajectory) of every other flight to keep clear of;
        ``holds`` : the hovers to try (default ``params.holds_s``).
        """
        p = self.params
        holds = p.holds_s if holds is None else tuple(holds)
        traj = flight.trajectory
        goal = traj.xyz_m[-1]
        fr = self.twin.frame
        g_ll = fr.to_wgs84(goal[0], goal[1])
        # the start: the predicted position after the reaction time; when the planner
        # cannot start there (a search cell next to a tall building), a few seconds
        # further along
        failures = []
        cached = {}
        # a flight still on its pad keeps its departure time (it re-plans from the pad)
        t_first = max(float(now_s) + p.reaction_s, traj.t_start_s)
        for extra in (0.0, 2.0, 4.0, 6.0):
            t_r = t_first + extra
            if t_r >= traj.t_end_s:
                raise ResolutionError(f"flight {flight.flight_id} lands before a new "
                                      "route could start")
            start = quantize([flight.position_at(t_r)])[0]
            s_ll = fr.to_wgs84(start[0], start[1])
            try:
                cached[p.bands_min_agl_m[0]] = self.planner.plan(RouteRequest(
                    (float(s_ll[0]), float(s_ll[1])), (float(g_ll[0]), float(g_ll[1])),
                    depart_s=t_r, ceiling_agl_m=p.ceiling_agl_m,
                    min_agl_m=float(p.bands_min_agl_m[0]), speeds=flight.speeds,
                    flight_id=flight.flight_id, start_alt_amsl_m=float(start[2]),
                    goal_alt_amsl_m=float(goal[2])))
                break
            except StartBlocked as exc:
                failures.append(f"start at +{p.reaction_s + extra:g} s: {exc}")
            except OutsideTwinError as exc:
                # (a drifting drone predicted off the twin: no route, not a crash of
                # the whole prediction round)
                raise ResolutionError(f"no advisory for flight {flight.flight_id}: "
                                      f"{exc}") from None
            except PlanError:
                break       # another reason: the bands below say which
        else:
            raise ResolutionError(f"no advisory for flight {flight.flight_id}: "
                                  + "; ".join(failures[:2]))
        pre_xyz, pre_t = self._prefix(flight, now_s, t_r, start)
        others = [o for o in others if o.flight_id != flight.flight_id]
        boxes = self._boxes(others)
        failures = []
        best = None
        tried = 0
        for band in p.bands_min_agl_m:
            if best is not None and best.added_delay_s <= p.good_enough_s:
                break
            try:
                route = cached.pop(band, None) or self.planner.plan(RouteRequest(
                    (float(s_ll[0]), float(s_ll[1])), (float(g_ll[0]), float(g_ll[1])),
                    depart_s=t_r, ceiling_agl_m=p.ceiling_agl_m, min_agl_m=float(band),
                    speeds=flight.speeds, flight_id=flight.flight_id,
                    start_alt_amsl_m=float(start[2]), goal_alt_amsl_m=float(goal[2])))
            except (PlanError, OutsideTwinError) as exc:
                failures.append(f"band {band:g} m: planner: {exc}")
                continue
            rt = route.trajectory
            # the planner snaps the pad to the lattice; the prefix must end there
            pre_xyz[-1] = rt.xyz_m[0]
            clear = self._holds_clear(rt, holds, others, boxes)
            for hold, ok_hold in zip(holds, clear, strict=True):
                arrival = rt.t_end_s + hold
                if best is not None and arrival - traj.t_end_s >= best.added_delay_s:
                    break
                if not ok_hold:
                    failures.append(f"band {band:g} m, hold {hold:g} s: conflict on "
                                    "the route")
                    continue
                tried += 1
                r_t = rt.t_s + hold
                rep = self._validate(rt.xyz_m, r_t, flight.speeds)
                if not rep.ok:
                    failures.append(f"band {band:g} m, hold {hold:g} s: validator: {rep}")
                    continue
                if hold and self._hold_in_zone(rt.xyz_m[0], t_r, t_r + hold):
                    failures.append(f"band {band:g} m, hold {hold:g} s: hover in a zone")
                    continue
                xyz = np.vstack([pre_xyz, rt.xyz_m[1:]]) if not hold else \
                    np.vstack([pre_xyz, rt.xyz_m])
                tt = np.concatenate([pre_t, r_t[1:]]) if not hold else \
                    np.concatenate([pre_t, r_t])
                full = Trajectory(flight.flight_id, xyz, tt, traj.priority,
                                  traj.max_delay_s, dict(traj.meta))
                # the whole trajectory (prefix and hover included)
                hit = self._conflict(full, others, boxes)
                if hit is not None:
                    failures.append(f"band {band:g} m, hold {hold:g} s: conflict "
                                    f"{flight.flight_id}/{hit}")
                    continue
                best = Advisory(
                    f"adv-{next(_IDS)}", flight.flight_id, reason, tuple(cause),
                    float(now_s), t_r, full, rt.xyz_m.copy(), r_t, float(hold),
                    float(arrival - traj.t_end_s), float(band), str(rep), 0,
                    basis=traj)
                break
        if best is None:
            raise ResolutionError(f"no advisory for flight {flight.flight_id}: "
                                  + _summary(failures))
        best.tried = tried
        return best

    def _hold_in_zone(self, p, t0, t1) -> bool:
        return any(segment_intersects(z, p, p, self.ground_range)
                   for z in self._zones(t0, t1))

    def _conflict(self, full: Trajectory, others, boxes) -> str | None:
        """Id of a flight among ``others`` that ``full`` conflicts with (None: clear):
        the booking detector first, then the independent verifier on the near ones."""
        near = self._near(full, others, boxes)
        hit = self._first_conflict(full, near)
        if hit is None and near:
            vr = verify([full, *near], self.params.separation, focus=[full.flight_id])
            if vr.residual_conflicts:
                c = vr.residual_conflicts[0]
                hit = c.flight_b if c.flight_a == full.flight_id else c.flight_a
        return hit

    def _ground_at(self, x_m: float, y_m: float) -> float:
        g = self.twin.grid
        i = min(max(int((x_m - g.x0_m) // g.dx_m), 0), g.nx - 1)
        j = min(max(int((y_m - g.y0_m) // g.dx_m), 0), g.ny - 1)
        return float(self.twin.ground_m[i, j])

    def _in_a_zone(self, traj: Trajectory) -> str | None:
        """Id of an active zone that ``traj`` enters (None: none), exact per segment."""
        for lz in self._zones(traj.t_start_s, traj.t_end_s):
            if self._enters(lz, traj) is not None:
                return lz.id
        return None

    def land_short(self, flight: LiveFlight, now_s: float, others=(), *, zone_id: str,
                   cause=None, step_s: float = 2.0,
                   hovers_s=(0.0, 5.0, 10.0, 20.0, 30.0)) -> Advisory:
        """The last resort before a zone: fly the approved path up to a stop before
        the zone, (hover,) and land vertically there.

        Stops are tried from the latest (``stop_margin_s`` before the first moment
        inside ``zone_id``) back to ``now_s + reaction_s`` every ``step_s``; each with
        the hovers ``hovers_s`` before the descent. A candidate is kept under the same
        checks as a reroute: the exact validator on the stop and descent (buildings
        with clearance around the whole column, a landing point outside every
        footprint, speed limits, zones), no active zone met anywhere on the whole
        advisory, the booking detector against everyone else's remaining plans and
        the verifier on the one kept. Raises :class:`ResolutionError` (with what each
        stop hit) when none passes.
        """
        p = self.params
        traj = flight.trajectory
        lz = self.zones.local(zone_id)
        t_first = max(float(now_s) + p.reaction_s, traj.t_start_s)
        if t_first >= traj.t_end_s:
            raise ResolutionError(f"flight {flight.flight_id} lands before it could stop")
        ahead = Trajectory(traj.flight_id, [flight.position_at(t_first),
                                            flight.position_at(t_first + 600.0)],
                           [t_first, t_first + 600.0]) if not flight.follows_plan \
            else remaining(traj, t_first)
        t_in = self._enters(lz, ahead)
        t_last = (min(traj.t_end_s, t_first + 600.0) if t_in is None
                  else t_in - p.stop_margin_s)
        stops = np.arange(t_last, t_first - 1e-9, -float(step_s))
        if stops.size == 0 or stops[-1] > t_first + 1e-9:
            stops = np.append(stops, t_first)
        others = [o for o in others if o.flight_id != flight.flight_id]
        boxes = self._boxes(others)
        sp = flight.speeds
        failures = []
        tried = 0
        for t_p in stops:
            t_p = float(t_p)
            stop = quantize([flight.position_at(t_p)])[0]
            ground = float(quantize([[0, 0, self._ground_at(stop[0], stop[1])]])[0, 2])
            if stop[2] - ground < 1.0:
                failures.append(f"stop at +{t_p - now_s:.0f} s: on the ground already")
                continue
            pre_xyz, pre_t = self._prefix(flight, now_s, t_p, stop)
            touch = np.array([stop[0], stop[1], ground])
            near_ground = np.array([stop[0], stop[1], min(stop[2], ground + 1.0)])
            for hover in hovers_s:
                t_h = t_p + hover
                t_g1 = t_h + (stop[2] - near_ground[2]) / sp.descent_mps
                t_g = t_g1 + (near_ground[2] - ground) / sp.descent_mps
                r_xyz = np.vstack([stop, stop, near_ground, touch])
                r_t = np.array([t_p, t_h, t_g1, t_g])
                tried += 1
                rep = self._validate(r_xyz, r_t, sp)
                if not rep.ok:
                    failures.append(f"stop at +{t_p - now_s:.0f} s: validator: {rep}")
                    break             # the same column whatever the hover
                keep = np.r_[True, np.diff(r_t) > 0]
                xyz = np.vstack([pre_xyz[:-1], r_xyz[keep]])
                tt = np.concatenate([pre_t[:-1], r_t[keep]])
                full = Trajectory(flight.flight_id, xyz, tt, traj.priority,
                                  traj.max_delay_s, dict(traj.meta))
                # (from the reaction time on: before it the drone cannot be told)
                zid = self._in_a_zone(remaining(full, t_first) or full)
                if zid is not None:
                    failures.append(f"stop at +{t_p - now_s:.0f} s: meets zone {zid}")
                    break
                hit = self._conflict(full, others, boxes)
                if hit is not None:
                    failures.append(f"stop at +{t_p - now_s:.0f} s, hover {hover:g} s: "
                                    f"conflict {flight.flight_id}/{hit}")
                    continue
                return Advisory(
                    f"adv-{next(_IDS)}", flight.flight_id, "zone",
                    tuple(cause) if cause is not None else (zone_id,), float(now_s),
                    t_p, full, r_xyz, r_t, float(hover),
                    float(full.t_end_s - traj.t_end_s), 0.0, str(rep), tried,
                    basis=traj, kind="land_short")
        raise ResolutionError(f"no land-short stop for flight {flight.flight_id}: "
                              + "; ".join(failures[:3])
                              + (f" (and {len(failures) - 3} more)"
                                 if len(failures) > 3 else ""))

    def zone_advisory(self, flight: LiveFlight, now_s: float, others=(), *,
                      zone_id: str) -> Advisory:
        """The advisory for a flight that would enter zone ``zone_id``: a reroute to
        its landing point (every band, the wide ``zone_holds_s``), else, with
        ``land_short``, a stop before the zone and a landing there. Raises
        :class:`ResolutionError` naming what both hit."""
        p = self.params
        try:
            return self.replan(flight, now_s, others, reason="zone", cause=(zone_id,),
                               holds=p.zone_holds_s)
        except ResolutionError as exc:
            if not p.land_short:
                raise
            reroute = str(exc)
        try:
            return self.land_short(flight, now_s, others, zone_id=zone_id)
        except ResolutionError as exc:
            raise ResolutionError(f"{reroute}; {exc}") from None

    def resolve(self, a: LiveFlight, b: LiveFlight, now_s: float, others=(),
                cause=(), exclude=()) -> tuple[Advisory, str]:
        """Resolve a predicted loss between ``a`` and ``b``: ``(advisory, rule)``.

        ``others`` : remaining plans of every flight (including a and b: the giver's
        own entry is ignored, the keeper's is kept). ``exclude`` : flight ids that
        refused an advisory for this pair: the other one gives way (rule
        ``"refused"``), unless both refused.
        """
        ex = set(exclude)
        if len(ex & {a.flight_id, b.flight_id}) == 1:
            giver = b if a.flight_id in ex else a
            keeper = a if giver is b else b
            if giver.state != "contingent":
                return self.replan(giver, now_s, others,
                                   cause=(keeper.flight_id, *cause)), "refused"
        giver, rule = choose_giver(a, b)
        if giver is not None:
            keeper = b if giver is a else a
            adv = self.replan(giver, now_s, others,
                              cause=(keeper.flight_id, *cause))
            return adv, rule
        advs = []
        errors = []
        for g, k in ((a, b), (b, a)):
            try:
                advs.append(self.replan(g, now_s, others, cause=(k.flight_id, *cause)))
            except ResolutionError as exc:
                errors.append(str(exc))
        if not advs:
            raise ResolutionError("; ".join(errors))
        advs.sort(key=lambda v: (v.added_delay_s, v.flight_id))
        return advs[0], "cost"

    def zone_entering(self, zone_id: str, flights, now_s: float) -> list:
        """``[(t_in_s, flight)]`` of the flights whose remainder (from ``now_s`` plus
        the reaction time) enters zone ``zone_id`` while it is active, earliest entry
        first: the order in which they must be re-planned."""
        if self.zones is None:
            raise LiveInputError("this resolver has no zone layer")
        lz = self.zones.local(zone_id)
        x0, y0, x1, y1 = self._zone_box(lz)
        entering = []
        for fl in flights:
            rem = remaining(fl.trajectory, float(now_s) + self.params.reaction_s)
            if rem is None:
                continue
            lo = rem.xyz_m.min(axis=0)
            hi = rem.xyz_m.max(axis=0)
            if hi[0] < x0 or lo[0] > x1 or hi[1] < y0 or lo[1] > y1:
                continue                   # not even near the zone: the cheap test
            t_in = self._enters(lz, rem)
            if t_in is not None:
                entering.append((t_in, fl))
        entering.sort(key=lambda e: (e[0], e[1].flight_id))
        return entering

    @staticmethod
    def _zone_box(lz):
        return lz.shape.bounds if lz.centre_m is None else (
            lz.centre_m[0] - lz.radius_m, lz.centre_m[1] - lz.radius_m,
            lz.centre_m[0] + lz.radius_m, lz.centre_m[1] + lz.radius_m)

    def zone_reroutes(self, zone_id: str, flights, now_s: float, others=(),
                      on_advisory=None, stop=None, clock=None):
        """Advisories for every flight whose remainder enters zone ``zone_id`` while it
        is active; ``(advisories, errors)`` with errors as ``(flight_id, message)``.

        The most urgent first (earliest entry into the zone); ``on_advisory(adv)`` is
        called as soon as each one is ready, so the first drone to reach the zone is
        not kept waiting for the re-plans of the others. ``clock()`` (default: the
        fixed ``now_s``) gives the decision time of each re-plan: a re-plan that starts
        10 s after the zone was created must start its new route from where the drone
        will be 10 s later, not from where it was when the zone appeared.
        """
        advs, errors = [], []
        others = list(others)
        for _t, fl in self.zone_entering(zone_id, flights, now_s):
            if stop is not None and stop():
                break
            t = float(now_s) if clock is None else max(float(now_s), float(clock()))
            try:
                adv = self.zone_advisory(fl, t, others, zone_id=zone_id)
            except ResolutionError as exc:
                errors.append((fl.flight_id, str(exc)))
                continue
            advs.append(adv)
            others.append(adv.trajectory)
            if on_advisory is not None:
                on_advisory(adv)
        return advs, errors

    def _enters(self, lz, traj: Trajectory) -> float | None:
        """First time (to about 1 s) at which ``traj`` is inside the zone while it is
        active (None: never)."""
        z = lz.zone
        for s in range(len(traj.t_s) - 1):
            t0, t1 = float(traj.t_s[s]), float(traj.t_s[s + 1])
            p0, p1 = traj.xyz_m[s], traj.xyz_m[s + 1]
            if not (z.active_during(t0, t1)
                    and segment_intersects(lz, p0, p1, self.ground_range)):
                continue
            n = max(1, int(math.ceil(t1 - t0)))
            for q in range(n):     # the first piece of about 1 s that meets it
                u0, u1 = q / n, (q + 1) / n
                a, b = p0 + u0 * (p1 - p0), p0 + u1 * (p1 - p0)
                ta, tb = t0 + u0 * (t1 - t0), t0 + u1 * (t1 - t0)
                if z.active_during(ta, tb) and segment_intersects(lz, a, b,
                                                                  self.ground_range):
                    return ta
            return t0
        return None
