"""Fleet simulator: drones fly their booked flights and stream telemetry (issue 11).

Design
------
The simulator is split so that its core is transport-free and testable in-process:

* :class:`SimDrone` is one drone: its approved trajectory (local metres), an optional
  injected :class:`Fault`, and its *true* position at any time. Faults, with their
  onset chosen by the seeded RNG while the drone is airborne (late departure: at the
  planned departure):

  - ``drift``: from onset the drone slides sideways at ``drift_mps`` (default 5 m/s,
    perpendicular to its track, e.g. a wind gust or a heading bias);
  - ``climb``: from onset it climbs at ``climb_mps`` (3 m/s) above its plan, up to
    +60 m (an altitude-hold failure);
  - ``hold``: from onset it hovers where it is (a stuck waypoint);
  - ``late``: it leaves the pad ``late_s`` (60 s) after the planned departure;
  - ``lost_link``: from onset it keeps flying its plan but sends nothing.

* :class:`Fleet` drives the drones on one clock: every ``1 / rate_hz`` it makes the
  reports of every drone that reports (true position plus Gaussian noise of
  ``noise_h_m`` horizontally per axis and ``noise_v_m`` vertically, converted to WGS84
  through the twin's frame), records the true positions for the separation audit,
  and takes the service's answers: lifecycle events (the time a Nonconforming event
  for a faulty drone arrives, minus its fault onset, is the detection latency) and
  advisories (a drone with an active fault cannot follow one and refuses; a healthy
  drone accepts and from then on flies the advised trajectory, exactly).

* Links carry reports and answers: :class:`InProcessLink` calls a
  :class:`~skytwin.live.engine.LiveOps` directly (tests, deterministic clock); the
  gRPC link (``run_simulation``) uses the public ``LiveService`` stream.

Losses of separation that *actually happened* are counted from the true positions,
sampled every tick and linear in between, with the tactical kernel's exact step test
(:func:`skytwin.live.tactical.loss_arrays`) and the strategic minima (30 m / 10 m).
A loss counts against the service (``losses_of_separation``) when neither drone had an
active fault or refused an advisory; losses involving a faulty drone are reported
apart (``losses_involving_faults``): a drone that flies off its plan and ignores
advice can always be made to collide.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from numba import njit

from skytwin.airspace._jit import JIT
from skytwin.live.tactical import loss_arrays
from skytwin.planner.trajectory import Trajectory

__all__ = ["FAULT_KINDS", "Fault", "Fleet", "InProcessLink", "SimDrone", "assign_faults",
           "percentile"]

FAULT_KINDS = ("drift", "climb", "hold", "late", "lost_link")


@dataclass
class Fault:
    kind: str
    onset_s: float
    param: float = 0.0


@dataclass
class SimDrone:
    """One simulated drone (see module docstring)."""

    flight_id: str
    operator: int
    trajectory: Trajectory
    fault: Fault | None = None
    refused: int = 0
    accepted: int = 0
    _hold_xyz: np.ndarray | None = None
    _drift_dir: np.ndarray | None = None

    def fault_active(self, t_s: float) -> bool:
        return self.fault is not None and t_s >= self.fault.onset_s

    def _plan_at(self, t_s: float) -> np.ndarray:
        tr = self.trajectory
        return np.array([np.interp(t_s, tr.t_s, tr.xyz_m[:, c]) for c in range(3)])

    def true_at(self, t_s: float) -> np.ndarray:
        """True position [m, local] at ``t_s``."""
        f = self.fault
        if f is None or t_s < f.onset_s:
            return self._plan_at(t_s)
        if f.kind == "late":
            return self._plan_at(t_s - f.param)
        if f.kind == "hold":
            if self._hold_xyz is None:
                self._hold_xyz = self._plan_at(f.onset_s)
            return self._hold_xyz.copy()
        p = self._plan_at(t_s)
        dt = t_s - f.onset_s
        if f.kind == "drift":
            if self._drift_dir is None:
                a = self._plan_at(f.onset_s)
                b = self._plan_at(f.onset_s + 1.0)
                d = b[:2] - a[:2]
                n = float(np.hypot(*d))
                self._drift_dir = (np.array([-d[1], d[0]]) / n if n > 1e-6
                                   else np.array([1.0, 0.0]))
            p[:2] += self._drift_dir * f.param * dt
        elif f.kind == "climb":
            p[2] += min(60.0, f.param * dt)
        return p

    def airborne(self, t_s: float) -> bool:
        """Between (effective) take-off and landing."""
        shift = self.fault.param if self.fault and self.fault.kind == "late" else 0.0
        return self.trajectory.t_start_s + shift <= t_s <= self.trajectory.t_end_s + shift

    def reports_at(self, t_s: float, pre_s: float = 5.0, post_s: float = 2.0) -> bool:
        """Reports from ``pre_s`` before departure to ``post_s`` after landing, unless
        the link is lost."""
        f = self.fault
        if f is not None and f.kind == "lost_link" and t_s >= f.onset_s:
            return False
        shift = f.param if f and f.kind == "late" else 0.0
        return (self.trajectory.t_start_s - pre_s <= t_s
                <= self.trajectory.t_end_s + shift + post_s)


def assign_faults(drones, share: float, rng, *, drift_mps=5.0, climb_mps=3.0,
                  late_s=60.0, kinds=FAULT_KINDS, window=None) -> int:
    """Give a seeded share of the drones a fault (kinds in turn); returns the count.

    Onsets of in-flight faults fall in the cruise, at least 15 s after take-off and
    30 s before landing, and inside ``window = (t_lo, t_hi)`` when given (flights
    without such a moment get a late departure instead, if their departure is in the
    window, else no fault).
    """
    n = len(drones)
    k = int(round(share * n))
    pick = rng.choice(n, size=k, replace=False) if k else []
    lo_w, hi_w = window if window is not None else (-np.inf, np.inf)
    made = 0
    for q, i in enumerate(sorted(int(x) for x in pick)):
        d = drones[i]
        kind = kinds[q % len(kinds)]
        t0, t1 = d.trajectory.t_start_s, d.trajectory.t_end_s
        a, b = max(t0 + 15.0, lo_w), min(t1 - 30.0, hi_w)
        if kind != "late" and b <= a:
            kind = "late"
        if kind == "late":
            if not lo_w <= t0 <= hi_w:
                continue
            d.fault = Fault("late", t0, late_s)
        else:
            onset = float(rng.uniform(a, b))
            param = {"drift": drift_mps, "climb": climb_mps}.get(kind, 0.0)
            d.fault = Fault(kind, onset, param)
        made += 1
    return made


@njit(**JIT)
def _plan_positions(off, tt, txyz, times, out):
    """Clamped position of packed trajectory f at times[f] into out[f] (n, 3)."""
    for f in range(off.shape[0] - 1):
        a = off[f]
        b = off[f + 1]
        t = times[f]
        if t <= tt[a]:
            out[f, 0] = txyz[a, 0]
            out[f, 1] = txyz[a, 1]
            out[f, 2] = txyz[a, 2]
            continue
        if t >= tt[b - 1]:
            out[f, 0] = txyz[b - 1, 0]
            out[f, 1] = txyz[b - 1, 1]
            out[f, 2] = txyz[b - 1, 2]
            continue
        i = a
        while tt[i + 1] < t:
            i += 1
        span = tt[i + 1] - tt[i]
        s = 0.0 if span <= 0.0 else (t - tt[i]) / span
        for c in range(3):
            out[f, c] = txyz[i, c] + s * (txyz[i + 1, c] - txyz[i, c])


def percentile(values, q) -> float | None:
    return None if not len(values) else float(np.percentile(np.asarray(values), q))


@dataclass
class Fleet:
    """The simulated fleet on one clock (module docstring)."""

    drones: list
    frame: object
    rng: np.random.Generator
    noise_h_m: float = 1.5
    noise_v_m: float = 1.0
    t0_s: float = 0.0
    step_s: float = 1.0
    truth: list = field(default_factory=list)     # per tick: (n, 3) positions
    alive: list = field(default_factory=list)     # per tick: (n,) airborne
    nonconf_at: dict = field(default_factory=dict)   # flight -> first NC/contingent time
    events: list = field(default_factory=list)
    advisories_issued: int = 0
    advisories_accepted: int = 0
    advisory_ids: set = field(default_factory=set)
    sent: int = 0

    def __post_init__(self):
        self.index = {d.flight_id: k for k, d in enumerate(self.drones)}
        self._packed = None
        self._faulty = [k for k, d in enumerate(self.drones) if d.fault is not None]

    def _pack(self):
        if self._packed is None:
            trs = [d.trajectory for d in self.drones]
            lens = np.array([len(t.t_s) for t in trs], np.int64)
            off = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
            self._packed = (off, np.concatenate([t.t_s for t in trs]),
                            np.ascontiguousarray(np.concatenate([t.xyz_m for t in trs])))
            self._start = np.array([t.t_start_s for t in trs])
            self._end = np.array([t.t_end_s for t in trs])
            self._faulty = [k for k, d in enumerate(self.drones) if d.fault is not None]
        return self._packed

    def true_positions(self, t_s: float) -> np.ndarray:
        """True positions (n, 3) of every drone at ``t_s`` (vectorised
        :meth:`SimDrone.true_at`; faulty drones one by one)."""
        off, tt, txyz = self._pack()
        n = len(self.drones)
        out = np.empty((n, 3))
        if n:
            _plan_positions(off, tt, txyz, np.full(n, float(t_s)), out)
        for k in self._faulty:
            d = self.drones[k]
            if d.fault_active(t_s):
                out[k] = d.true_at(t_s)
        return out

    def tick_reports(self, t_s: float):
        """Record truth at ``t_s`` and return the reports to send:
        ``(flight_ids, t, lon, lat, alt, vel (n, 3))``."""
        pos = self.true_positions(t_s)
        self.truth.append(pos)
        shift = np.zeros(len(self.drones))
        stop = np.zeros(len(self.drones), bool)
        for k in self._faulty:
            f = self.drones[k].fault
            if f.kind == "late":
                shift[k] = f.param
            elif f.kind == "lost_link" and t_s >= f.onset_s:
                stop[k] = True
        self.alive.append((self._start + shift <= t_s) & (t_s <= self._end + shift))
        rep = (self._start - 5.0 <= t_s) & (t_s <= self._end + shift + 2.0) & ~stop
        who = np.flatnonzero(rep)
        if not who.size:
            return [], np.zeros(0), np.zeros(0), np.zeros(0), np.zeros(0), np.zeros((0, 3))
        p = pos[who].copy()
        m = len(who)
        p[:, :2] += self.rng.normal(0.0, self.noise_h_m, (m, 2))
        p[:, 2] += self.rng.normal(0.0, self.noise_v_m, m)
        lon, lat = self.frame.to_wgs84(p[:, 0], p[:, 1])
        vel = self.true_positions(t_s + 0.5)[who] - self.true_positions(t_s - 0.5)[who]
        self.sent += m
        return ([self.drones[k].flight_id for k in who], np.full(m, float(t_s)),
                np.asarray(lon), np.asarray(lat), p[:, 2], vel)

    def on_event(self, flight_id: str, to_state: str, received_s: float) -> None:
        self.events.append((flight_id, to_state, received_s))
        if to_state in ("nonconforming", "contingent") and flight_id in self.index:
            self.nonconf_at.setdefault(flight_id, received_s)

    def on_advisory(self, flight_id: str, advisory_id: str, trajectory: Trajectory,
                    t_s: float) -> bool:
        """A drone decides: accept (healthy) or refuse (active fault)."""
        if advisory_id in self.advisory_ids:
            return False
        self.advisory_ids.add(advisory_id)
        self.advisories_issued += 1
        k = self.index.get(flight_id)
        if k is None:
            return False
        d = self.drones[k]
        if d.fault_active(t_s):
            d.refused += 1
            return False
        d.trajectory = trajectory
        self._packed = None
        d.accepted += 1
        self.advisories_accepted += 1
        return True

    # ------------------------------------------------------------------ metrics
    def losses(self, h_m: float = 30.0, v_m: float = 10.0):
        """Pairs of drones that really lost separation: ``(all, clean)`` lists of
        ``(flight_a, flight_b, t_s)``; clean = neither faulty nor refusing."""
        if len(self.truth) < 2:
            return [], []
        xyz = np.stack(self.truth, axis=1)            # (n, T, 3)
        valid = np.stack(self.alive, axis=1)
        i, j, k, u, *_ = loss_arrays(xyz, valid, h_m, v_m)
        out, clean = [], []
        for a, b, kk, uu in zip(i.tolist(), j.tolist(), k.tolist(), u.tolist(),
                                strict=True):
            da, db = self.drones[a], self.drones[b]
            rec = (da.flight_id, db.flight_id, self.t0_s + (kk + uu) * self.step_s)
            out.append(rec)
            if not (da.fault or db.fault or da.refused or db.refused):
                clean.append(rec)
        return out, clean

    def metrics(self) -> dict:
        faulty = [d for d in self.drones if d.fault is not None]
        detected, lat = 0, []
        for d in faulty:
            t = self.nonconf_at.get(d.flight_id)
            if t is not None and t >= d.fault.onset_s - 1e-9:
                detected += 1
                lat.append(t - d.fault.onset_s)
        false_alarms = sum(1 for d in self.drones
                           if d.fault is None and d.flight_id in self.nonconf_at)
        # a faulty drone flagged before its fault began is a false alarm too
        false_alarms += sum(1 for d in faulty if d.flight_id in self.nonconf_at
                            and self.nonconf_at[d.flight_id] < d.fault.onset_s - 1e-9)
        all_l, clean = self.losses()
        by_kind: dict = {}
        for d in faulty:
            s = by_kind.setdefault(d.fault.kind, [0, 0])
            s[0] += 1
            t = self.nonconf_at.get(d.flight_id)
            s[1] += int(t is not None and t >= d.fault.onset_s - 1e-9)
        return {
            "faults_injected": len(faulty),
            "faults_detected": detected,
            "faults_by_kind": {k: {"injected": v[0], "detected": v[1]}
                               for k, v in sorted(by_kind.items())},
            "false_alarms": false_alarms,
            "detect_p50_s": percentile(lat, 50),
            "detect_p99_s": percentile(lat, 99),
            "detect_max_s": max(lat) if lat else None,
            "advisories_issued": self.advisories_issued,
            "advisories_accepted": self.advisories_accepted,
            "losses_of_separation": len(clean),
            "losses_involving_faults": len(all_l) - len(clean),
            "loss_pairs": [list(x) for x in clean[:10]],
        }


class InProcessLink:
    """Link the fleet to a :class:`~skytwin.live.engine.LiveOps` in this process."""

    def __init__(self, ops, fleet: Fleet):
        self.ops = ops
        self.fleet = fleet
        self.statuses: list = []
        self.conflicts_predicted = 0
        self.seen_losses: set = set()

    def step(self, t_s: float) -> None:
        ids, t, lon, lat, alt, vel = self.fleet.tick_reports(t_s)
        if ids:
            res = self.ops.ingest(None, ids, t, lon, lat, alt, now_s=t_s, vel_mps=vel)
            self.statuses.append(res.status)
            for ev in res.transitions:
                self.fleet.on_event(ev.flight_id, ev.to_state, t_s)
        tick = self.ops.tick(t_s)
        for ev in tick.transitions:
            self.fleet.on_event(ev.flight_id, ev.to_state, t_s)
        for loss in tick.losses:
            self.seen_losses.add(tuple(sorted((loss.flight_a, loss.flight_b))))
        self.conflicts_predicted = len(self.seen_losses)
        for adv in tick.advisories:
            ok = self.fleet.on_advisory(adv.flight_id, adv.advisory_id, adv.trajectory, t_s)
            self.ops.answer_advisory(adv.advisory_id, ok, None, t_s)
        self.ops.expire_advisories(t_s)

    def zone_added(self, zone_id: str, t_s: float):
        advs, errors = self.ops.zone_added(zone_id, t_s)
        for adv in advs:
            ok = self.fleet.on_advisory(adv.flight_id, adv.advisory_id, adv.trajectory, t_s)
            self.ops.answer_advisory(adv.advisory_id, ok, None, t_s)
        return advs, errors


def zone_entries(drones, zone_local, truth, alive, t0_s, step_s, ground_range) -> list:
    """Drones whose true path entered ``zone_local`` while it was active (sampled)."""
    from skytwin.airspace.zones import segment_intersects
    z = zone_local.zone
    out = []
    xyz = np.stack(truth, axis=1)
    al = np.stack(alive, axis=1)
    for k, d in enumerate(drones):
        for s in range(xyz.shape[1] - 1):
            t = t0_s + s * step_s
            if not (al[k, s] and al[k, s + 1]) or not z.active_during(t, t + step_s):
                continue
            if segment_intersects(zone_local, xyz[k, s], xyz[k, s + 1], ground_range):
                out.append((d.flight_id, t))
                break
    return out

