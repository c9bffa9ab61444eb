"""The live-operations engine: telemetry in, lifecycle events and advisories out.

This is the pure core the server wraps (no gRPC, no storage: the caller persists the
events and track rows it returns and drains). It owns, for every known flight:
its lifecycle state (:mod:`.lifecycle`), the newest accepted report
(:class:`~.telemetry.TrackState`), its track (:class:`~.tracks.Tracks`), and, while
airborne, its conformance timers (:class:`~.conformance.Monitor`).

Data flow
---------
1. :meth:`LiveOps.ingest`: a batch of reports from one operator. Unknown flights,
   flights of another operator and flights no longer active get their status from
   here; the rest are validated (:func:`~.telemetry.validate_reports`). An accepted
   report of an ``accepted`` flight activates it (actor ``service``, reason
   ``first_telemetry``); accepted reports of airborne flights go through the
   conformance check and timers. Returns per-report statuses and the transitions.
2. :meth:`LiveOps.tick` (one call per second from one thread, for every flight):
   the sweep timers, then tactical prediction of every airborne drone and of booked
   flights departing within the look-ahead, then resolution of new predicted losses
   (at most ``max_resolutions_per_tick``; a pair with an open advisory is not
   resolved again until that advisory is answered or expires).
3. :meth:`LiveOps.answer_advisory`: the operator accepts (the advisory's trajectory
   becomes the approved one and the conformance timers restart) or refuses it.
4. :meth:`LiveOps.zone_added`: a zone created while flights are airborne re-plans
   every airborne flight whose remainder enters it (same resolver).
5. Commands (:meth:`LiveOps.command`): operator and regulator transitions (end,
   contingent, cancel, activate) checked against the lifecycle table.

Threading: every public method takes the engine's lock for its bookkeeping only;
route planning inside :meth:`tick` and :meth:`zone_added` runs outside that lock, so
ingestion is never blocked behind a re-plan. Re-plans themselves are serialised by a
second lock (``_plan_lock``), one flight at a time, whoever asks (the prediction round
or a zone): each takes a *fresh* snapshot of everyone's remaining plans and of every
advisory still awaiting an answer, and its decision time is the clock at that moment
(``clock``), not the start of the round. Two re-plans made side by side from two
snapshots could each be safe against the old plans and unsafe against each other; a
re-plan made from a stale time starts its new route from where the drone no longer is.

One open advisory per flight: a pair whose flight already waits for an answer is not
resolved again until that answer (or expiry); a zone re-plan supersedes an open
conflict advisory of the same flight (its acceptance is then refused), and the
acceptance of an advisory planned from a trajectory the flight no longer has (its
``basis``) is refused, so a drone never switches to a plan whose first part it is not
flying.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np

from skytwin.live import lifecycle as lc
from skytwin.live.conformance import ConformanceParams, Monitor
from skytwin.live.errors import LiveInputError, ResolutionError
from skytwin.live.resolve import Advisory, LiveFlight, ResolutionParams, Resolver, \
    remaining, state_trajectory
from skytwin.live.tactical import PredictedLoss, detect_losses, predict
from skytwin.live.telemetry import ReportBatch, ReportStatus, TelemetryLimits, \
    TrackState, validate_reports
from skytwin.live.tracks import Tracks
from skytwin.planner.timing import SpeedProfile
from skytwin.planner.trajectory import Trajectory

__all__ = ["FlightInfo", "IngestResult", "LiveOps", "TickResult"]


@dataclass
class FlightInfo:
    """What the engine knows of one flight."""

    flight_id: str
    operator_id: str
    trajectory: Trajectory
    priority: float = 1.0
    state: str = lc.ACCEPTED
    speeds: SpeedProfile = field(default_factory=SpeedProfile)
    slot: int = -1
    ended_s: float | None = None


@dataclass
class IngestResult:
    status: np.ndarray                # (n,) int8 ReportStatus
    transitions: list                 # lifecycle Transition events, time order
    conforming: np.ndarray            # (n,) bool (False where not applied)


@dataclass
class TickResult:
    transitions: list
    losses: list                      # PredictedLoss
    advisories: list                  # Advisory issued this tick
    failures: list                    # (flight ids, reason) of losses left unresolved
    predicted: int                    # drones predicted
    tick_ms: float = 0.0


class LiveOps:
    """See module docstring."""

    def __init__(self, twin=None, zones=None, *, frame=None,
                 conformance: ConformanceParams | None = None,
                 telemetry: TelemetryLimits | None = None,
                 resolution: ResolutionParams | None = None,
                 horizon_s: float = 30.0, step_s: float = 1.0,
                 separation_h_m: float = 30.0, separation_v_m: float = 10.0,
                 max_resolutions_per_tick: int = 8, resolver: Resolver | None = None,
                 tracks: Tracks | None = None, retry_after_s: float = 5.0,
                 stale_after_s: float = 5.0):
        if frame is None and twin is None:
            raise LiveInputError("LiveOps needs a twin or a frame")
        self.frame = frame if frame is not None else twin.frame
        self.twin = twin
        self.zones = zones
        self.monitor = Monitor(conformance)
        self.telemetry_limits = telemetry or TelemetryLimits()
        self.track_state = TrackState(1024)
        self.tracks = tracks or Tracks()
        self.horizon_s = float(horizon_s)
        self.step_s = float(step_s)
        self.sep_h = float(separation_h_m)
        self.sep_v = float(separation_v_m)
        self.max_resolutions = int(max_resolutions_per_tick)
        self._resolver = resolver
        self._resolution = resolution
        self._flights: dict[str, FlightInfo] = {}
        self._by_slot: list[str] = []
        self._vel = np.full((1024, 3), np.nan)
        self.advisories: dict[str, tuple[Advisory, str]] = {}  # id -> (adv, status)
        self._open_pair: dict[tuple, str] = {}
        self._refused: dict[tuple, set] = {}   # pair -> flights that refused for it
        self._retry_at: dict[tuple, float] = {}   # pair -> earliest next resolution
        self._pairs_seen: set = set()             # distinct predicted pairs (a stat)
        self.retry_after_s = float(retry_after_s)
        # an advisory whose start is closer than this when it is ready is made again
        self.advisory_notice_s = 1.5
        self.stale_after_s = float(stale_after_s)
        self._lock = threading.RLock()
        self._plan_lock = threading.Lock()
        self._open_adv: dict[str, str] = {}       # flight -> advisory awaiting answer
        self.stats = {"reports": 0, "accepted": 0, "losses": 0, "conflict_pairs": 0,
                      "advisories": 0,
                      "advisories_accepted": 0, "advisories_refused": 0,
                      "unresolved": 0, "zone_unresolved": 0}
        # (zone, flight, time, reason) of the last zone re-plans that found no advisory
        self.zone_failures: list = []

    # ------------------------------------------------------------------ flights
    @property
    def resolver(self) -> Resolver | None:
        if self._resolver is None and self.twin is not None:
            self._resolver = Resolver(self.twin, self.zones, self._resolution)
        return self._resolver

    def register(self, flight_id: str, operator_id: str, trajectory: Trajectory, *,
                 priority: float = 1.0, state: str = lc.ACCEPTED,
                 speeds: SpeedProfile | None = None, now_s: float | None = None) -> None:
        """Make a booked flight known (or restore one after a restart in ``state``)."""
        if state not in lc.STATES:
            raise LiveInputError(f"unknown state {state!r}")
        with self._lock:
            fi = self._flights.get(flight_id)
            if fi is None:
                slot = len(self._by_slot)
                self._by_slot.append(flight_id)
                self.track_state.ensure(slot + 1)
                if slot >= self._vel.shape[0]:
                    self._vel = np.vstack([self._vel, np.full((self._vel.shape[0], 3),
                                                              np.nan)])
                fi = FlightInfo(flight_id, operator_id, trajectory, float(priority), state,
                                speeds or SpeedProfile(), slot)
                self._flights[flight_id] = fi
            else:
                fi.trajectory = trajectory
                fi.state = state
            if state in lc.AIRBORNE and flight_id not in self.monitor:
                self.monitor.activate(flight_id, trajectory,
                                      trajectory.t_start_s if now_s is None else now_s,
                                      state=state)

    def get(self, flight_id: str) -> FlightInfo | None:
        return self._flights.get(flight_id)

    def state_of(self, flight_id: str) -> str | None:
        fi = self._flights.get(flight_id)
        return None if fi is None else fi.state

    def forget(self, now_s: float, keep_s: float = 600.0) -> int:
        """Drop flights that ended or were cancelled more than ``keep_s`` ago."""
        with self._lock:
            old = [f for f, fi in self._flights.items()
                   if fi.state in lc.TERMINAL and fi.ended_s is not None
                   and now_s - fi.ended_s > keep_s]
            for f in old:
                fi = self._flights.pop(f)
                self.track_state.clear(fi.slot)
                self._by_slot[fi.slot] = ""
            self.tracks.prune(now_s)
            return len(old)

    # ------------------------------------------------------------------ transitions
    def _apply(self, ev: lc.Transition) -> None:
        """Record a checked transition (lock held)."""
        fi = self._flights[ev.flight_id]
        fi.state = ev.to_state
        if ev.to_state in lc.TERMINAL:
            fi.ended_s = ev.t_s
            self.monitor.remove(ev.flight_id)
            self.tracks.ended(ev.flight_id, ev.t_s)
            for k in [k for k in self._open_pair if ev.flight_id in k]:
                del self._open_pair[k]
            self._open_adv.pop(ev.flight_id, None)

    def command(self, flight_id: str, to_state: str, actor: str, now_s: float,
                reason: str = "declared", detail: str = "") -> lc.Transition:
        """An operator or regulator transition (checked against the lifecycle)."""
        with self._lock:
            fi = self._flights.get(flight_id)
            if fi is None:
                raise KeyError(flight_id)
            ev = lc.transition(fi.state, to_state, actor, flight_id=flight_id, t_s=now_s,
                               reason=reason, detail=detail)
            if to_state == lc.ACTIVATED and fi.state == lc.ACCEPTED:
                self.monitor.activate(flight_id, fi.trajectory, now_s)
            elif to_state == lc.CONTINGENT and flight_id in self.monitor:
                self.monitor.force(flight_id, lc.CONTINGENT, now_s)
            self._apply(ev)
            return ev

    # ------------------------------------------------------------------ ingest
    def ingest(self, operator_id: str | None, flight_ids, t_s, lon_deg, lat_deg, alt_m,
               now_s: float, vel_mps=None, acc_h_m=None, acc_v_m=None) -> IngestResult:
        """Validate and apply a batch of reports (see module docstring, step 1).

        ``operator_id`` None = a trusted caller (regulator tools, tests): no ownership
        check.
        """
        flight_ids = list(flight_ids)
        n = len(flight_ids)
        pre = np.zeros(n, np.int8)
        slots = np.full(n, -1, np.int64)
        with self._lock:
            for k, fid in enumerate(flight_ids):
                fi = self._flights.get(fid)
                if fi is None:
                    pre[k] = ReportStatus.UNKNOWN_FLIGHT
                elif operator_id is not None and fi.operator_id != operator_id:
                    pre[k] = ReportStatus.FOREIGN_FLIGHT
                elif fi.state in lc.TERMINAL:
                    pre[k] = ReportStatus.NOT_ACTIVE
                else:
                    slots[k] = fi.slot
            batch = ReportBatch.from_wgs84(self.frame, slots, t_s, lon_deg, lat_deg, alt_m,
                                           vel_mps, acc_h_m, acc_v_m)
            status = validate_reports(batch, self.track_state, now_s,
                                      self.telemetry_limits, pre_status=pre)
            ok = status == ReportStatus.OK
            self.stats["reports"] += n
            self.stats["accepted"] += int(ok.sum())
            conforming = np.zeros(n, np.bool_)
            events: list[lc.Transition] = []
            if not ok.any():
                return IngestResult(status, events, conforming)
            idx = np.flatnonzero(ok)
            # velocity: reported, else finite difference (after the track update)
            ids_ok = [flight_ids[k] for k in idx]
            self.tracks.add(ids_ok, batch.t_s[idx], batch.xyz_m[idx], rows=[
                (flight_ids[k], float(batch.t_s[k]), float(batch.lon_deg[k]),
                 float(batch.lat_deg[k]), float(batch.alt_m[k])) for k in idx])
            vel_given = np.all(np.isfinite(batch.vel_mps[idx]), axis=1)
            self._vel[slots[idx[vel_given]]] = batch.vel_mps[idx[vel_given]]
            for k in idx[~vel_given]:
                v = self.tracks.velocity(flight_ids[k])
                self._vel[slots[k]] = np.nan if v is None else v
            # first telemetry activates a booked flight
            for k in idx:
                fi = self._flights[flight_ids[k]]
                if fi.state == lc.ACCEPTED:
                    ev = lc.transition(fi.state, lc.ACTIVATED, lc.SERVICE,
                                       flight_id=fi.flight_id, t_s=float(batch.t_s[k]),
                                       reason="first_telemetry")
                    self.monitor.activate(fi.flight_id, fi.trajectory, float(batch.t_s[k]))
                    self._apply(ev)
                    events.append(ev)
            msl = self.monitor.slots_of(ids_ok)
            conf, evs = self.monitor.update(msl, batch.t_s[idx], batch.xyz_m[idx])
            conforming[idx] = conf
            for ev in evs:
                self._check_and_apply(ev)
                events.append(ev)
            events.sort(key=lambda e: e.t_s)
            return IngestResult(status, events, conforming)

    def _check_and_apply(self, ev: lc.Transition) -> None:
        fi = self._flights[ev.flight_id]
        lc.transition(fi.state, ev.to_state, ev.actor)   # the monitor obeys the table
        self._apply(ev)

    # ------------------------------------------------------------------ tick
    def _live_flight(self, fi: FlightInfo) -> LiveFlight:
        s = fi.slot
        t = self.track_state.last_t_s[s]
        have = bool(np.isfinite(t))
        return LiveFlight(fi.flight_id, fi.trajectory, fi.priority, fi.state,
                          float(t) if have else None,
                          self.track_state.last_xyz_m[s].copy() if have else None,
                          self._vel[s].copy() if have else None, fi.speeds)

    def _others(self, flights: list[LiveFlight], now_s: float) -> list[Trajectory]:
        """Remaining plans of ``flights`` plus every advisory still waiting for its
        answer (either may become what the drone flies)."""
        out = []
        with self._lock:
            for adv, status in self.advisories.values():
                if status == "issued":
                    r = remaining(adv.trajectory, now_s)
                    if r is not None:
                        out.append(r)
        for lf in flights:
            if lf.follows_plan:
                r = remaining(lf.trajectory, now_s)
                if r is not None:
                    out.append(r)
            elif lf.measured_t_s is not None:
                out.append(state_trajectory(lf.flight_id, lf.measured_t_s,
                                            lf.measured_xyz_m, lf.measured_vel_mps,
                                            self.horizon_s, now_s))
        return out

    def sweep(self, now_s: float) -> list:
        """The conformance timers of every flight at once (silence, excursion limit,
        end); returns the transitions (already applied)."""
        with self._lock:
            events = self.monitor.sweep(now_s)
            for ev in events:
                self._check_and_apply(ev)
            return events

    def tick(self, now_s: float, resolve: bool = True) -> TickResult:
        """Sweep, then predict and resolve (see module docstring, step 2)."""
        events = self.sweep(now_s)
        res = self.predict_and_resolve(now_s, resolve)
        res.transitions = events
        return res

    def predict_and_resolve(self, now_s: float, resolve: bool = True, clock=None,
                            on_advisory=None) -> TickResult:
        """Tactical prediction of every drone and resolution of new losses.

        ``clock()`` gives each re-plan its own decision time (default: ``now_s``);
        ``on_advisory(adv)`` is called as soon as each advisory is made (the round may
        make several; the first should not wait for the others)."""
        import time as _time
        t_start = _time.perf_counter()
        events: list = []
        # the snapshot under the engine's lock (plain references and copies: ingestion
        # waits for this part only), the prediction and detection outside it
        with self._lock:
            plan_ids, plan_trajs, booked_ids, booked_trajs = [], [], [], []
            m_ids, m_slots = [], []
            state = {}
            horizon_end = now_s + self.horizon_s
            last_t = self.track_state.last_t_s
            for fid, fi in self._flights.items():
                st = fi.state
                if st == lc.ACTIVATED:
                    if fi.trajectory.t_end_s >= now_s:
                        plan_ids.append(fid)
                        plan_trajs.append(fi.trajectory)
                        state[fid] = st
                elif st in (lc.NONCONFORMING, lc.CONTINGENT):
                    if not now_s - last_t[fi.slot] <= self.stale_after_s:
                        # silent (lost link): its plan is the best estimate left
                        if fi.trajectory.t_end_s >= now_s:
                            plan_ids.append(fid)
                            plan_trajs.append(fi.trajectory)
                            state[fid] = st
                    else:
                        m_ids.append(fid)
                        m_slots.append(fi.slot)
                        state[fid] = st
                elif st == lc.ACCEPTED and \
                        fi.trajectory.t_start_s <= horizon_end and \
                        fi.trajectory.t_end_s >= now_s:
                    booked_ids.append(fid)
                    booked_trajs.append(fi.trajectory)
                    state[fid] = st
            ms = np.asarray(m_slots, np.int64)
            m_t = last_t[ms].copy()
            m_xyz = self.track_state.last_xyz_m[ms].copy()
            m_vel = self._vel[ms].copy()
        pred = predict(now_s, plan_ids=plan_ids, plan_trajs=plan_trajs,
                       measured_ids=m_ids, measured_t_s=m_t, measured_xyz_m=m_xyz,
                       measured_vel_mps=m_vel, booked_ids=booked_ids,
                       booked_trajs=booked_trajs, horizon_s=self.horizon_s,
                       step_s=self.step_s)
        losses = detect_losses(pred, self.sep_h, self.sep_v)
        with self._lock:
            self.stats["losses"] += len(losses)
            for loss in losses:
                self._pairs_seen.add((loss.flight_a, loss.flight_b))
            self.stats["conflict_pairs"] = len(self._pairs_seen)
            todo = []
            for loss in losses:
                key = tuple(sorted((loss.flight_a, loss.flight_b)))
                if key in self._open_pair or self._retry_at.get(key, -1.0) > now_s:
                    continue
                if loss.flight_a in self._open_adv or loss.flight_b in self._open_adv:
                    continue      # one open advisory per flight (module docstring)
                if state[loss.flight_a] == lc.ACCEPTED and \
                        state[loss.flight_b] == lc.ACCEPTED:
                    continue   # both still on the ground: strategic deconfliction's job
                todo.append((key, loss))
            todo.sort(key=lambda x: x[1].t_s)
            todo = todo[:self.max_resolutions] if resolve and self.resolver else []
            for key, _ in todo:
                self._open_pair[key] = "(resolving)"
        advisories, failures = [], []
        for key, loss in todo:
            with self._plan_lock:
                t = now_s if clock is None else max(now_s, float(clock()))
                live = {f.flight_id: f for f in self._all_live(t)}
                a, b = live.get(loss.flight_a), live.get(loss.flight_b)
                with self._lock:
                    busy = loss.flight_a in self._open_adv or loss.flight_b in self._open_adv
                if a is None or b is None or busy:
                    with self._lock:
                        self._open_pair.pop(key, None)
                    continue
                others = self._others(list(live.values()), t)
                try:
                    adv, _rule = self.resolver.resolve(
                        a, b, t, others, exclude=self._refused.get(key, ()))
                except Exception as exc:  # noqa: BLE001 - one pair never stops the round
                    failures.append((key, str(exc) if isinstance(exc, ResolutionError)
                                     else f"{type(exc).__name__}: {exc}"))
                    with self._lock:
                        self._open_pair.pop(key, None)
                        self._retry_at[key] = now_s + self.retry_after_s
                        self.stats["unresolved"] += 1
                    continue
                with self._lock:
                    self._open_pair[key] = adv.advisory_id
                    self._record(adv)
            advisories.append(adv)
            if on_advisory is not None:
                on_advisory(adv)
        return TickResult(events, losses, advisories, failures, len(pred),
                          1e3 * (_time.perf_counter() - t_start))

    # ------------------------------------------------------------------ advisories
    def _record(self, adv: Advisory) -> None:
        """An advisory is issued (lock held): it is the flight's open advisory."""
        self.advisories[adv.advisory_id] = (adv, "issued")
        self._open_adv[adv.flight_id] = adv.advisory_id
        self.stats["advisories"] += 1

    def _close(self, advisory_id: str, status: str) -> None:
        """An advisory is answered, expired or superseded (lock held)."""
        adv, _ = self.advisories[advisory_id]
        self.advisories[advisory_id] = (adv, status)
        if self._open_adv.get(adv.flight_id) == advisory_id:
            del self._open_adv[adv.flight_id]
        for p in [p for p, v in self._open_pair.items() if v == advisory_id]:
            del self._open_pair[p]

    def answer_advisory(self, advisory_id: str, accept: bool, operator_id: str | None,
                        now_s: float) -> Advisory:
        """Accept (new approved trajectory) or refuse an advisory."""
        with self._lock:
            entry = self.advisories.get(advisory_id)
            if entry is None:
                raise KeyError(advisory_id)
            adv, status = entry
            fi = self._flights.get(adv.flight_id)
            if fi is None or (operator_id is not None and fi.operator_id != operator_id):
                raise PermissionError(f"advisory {advisory_id} is not for a flight of "
                                      f"operator {operator_id}")
            if status != "issued":
                raise LiveInputError(f"advisory {advisory_id} was already {status}")
            if fi.state in lc.TERMINAL:
                raise LiveInputError(f"flight {fi.flight_id} is {fi.state}")
            for k in [k for k, v in self._open_pair.items() if v == advisory_id]:
                # the new plan needs a few reports to show in the measurements
                self._retry_at[k] = now_s + min(self.retry_after_s, 3.0)
            if accept and adv.basis is not None and fi.trajectory is not adv.basis:
                self._close(advisory_id, "superseded")
                raise LiveInputError(
                    f"advisory {advisory_id} was planned from a trajectory flight "
                    f"{fi.flight_id} no longer has (another advisory was accepted since); "
                    "keep flying the approved one")
            if accept:
                fi.trajectory = adv.trajectory
                if fi.flight_id in self.monitor:
                    self.monitor.replace_trajectory(fi.flight_id, adv.trajectory)
                self._close(advisory_id, "accepted")
                self.stats["advisories_accepted"] += 1
            else:
                self._close(advisory_id, "refused")
                self.stats["advisories_refused"] += 1
                if adv.reason == "conflict":
                    key = tuple(sorted((adv.flight_id, *adv.cause[:1])))
                    self._refused.setdefault(key, set()).add(adv.flight_id)
            return adv

    def expire_advisories(self, now_s: float, grace_s: float = 2.0) -> list[str]:
        """Unanswered advisories whose start passed more than ``grace_s`` ago can no
        longer be flown (the grace lets an answer sent just before the start arrive)."""
        with self._lock:
            gone = [k for k, (a, st) in self.advisories.items()
                    if st == "issued" and a.start_s + grace_s < now_s]
            for k in gone:
                self._close(k, "expired")
            return gone

    def _all_live(self, now_s: float) -> list[LiveFlight]:
        """Every flight not ended or cancelled whose plan is not over (what a new
        trajectory must keep clear of: airborne and booked alike)."""
        with self._lock:     # references and copies only under the lock
            fis = [(fi.flight_id, fi.trajectory, fi.priority, fi.state, fi.speeds, fi.slot)
                   for fi in self._flights.values()
                   if fi.state not in lc.TERMINAL and fi.trajectory.t_end_s >= now_s]
            sl = np.fromiter((f[5] for f in fis), np.int64, len(fis))
            t = self.track_state.last_t_s[sl].copy()
            xyz = self.track_state.last_xyz_m[sl].copy()
            vel = self._vel[sl].copy()
        have = np.isfinite(t)
        return [LiveFlight(fid, tr, pr, st, float(t[k]) if have[k] else None,
                           xyz[k] if have[k] else None, vel[k] if have[k] else None, sp)
                for k, (fid, tr, pr, st, sp, _s) in enumerate(fis)]

    def zone_added(self, zone_id: str, now_s: float, on_advisory=None, stop=None,
                   booked_within_s: float = 600.0, clock=None, only=None):
        """Advisories for the flights whose remainder enters the new zone: airborne
        ones (activated, nonconforming) and booked ones departing within
        ``booked_within_s`` (they re-plan from their pad at their departure time;
        later ones are listed as affected by the zone's creation and re-booked by
        their operators). The earliest entry is re-planned first, each from a fresh
        snapshot at its own ``clock()`` time (module docstring); ``only`` restricts
        the check to these flight ids (a flight whose plan changed since);
        ``stop()`` ends the work early (server shutdown). Returns
        ``(advisories, errors)``."""
        if self.resolver is None:
            return [], []

        def candidates(t, live=None):
            return [f for f in (self._all_live(t) if live is None else live)
                    if (f.state in (lc.ACTIVATED, lc.NONCONFORMING)
                        or (f.state == lc.ACCEPTED
                            and f.trajectory.t_start_s <= t + booked_within_s))
                    and (only is None or f.flight_id in only)]

        order = [fl.flight_id for _t, fl in
                 self.resolver.zone_entering(zone_id, candidates(now_s), now_s)]
        advs, errors = [], []
        for fid in order:
            if stop is not None and stop():
                break
            with self._plan_lock:
                t = now_s if clock is None else max(now_s, float(clock()))
                everyone = self._all_live(t)     # one snapshot: the flight and the rest
                fl = next((f for f in candidates(t, everyone) if f.flight_id == fid), None)
                # the plan may have changed (an advisory accepted) since the order
                if fl is None or not self.resolver.zone_entering(zone_id, [fl], t):
                    continue
                others = self._others(everyone, t)
                try:
                    adv = self.resolver.zone_advisory(fl, t, others, zone_id=zone_id)
                    for _ in range(2):
                        # made too slowly to be flown (its start is near or past): plan
                        # again from the clock now (17:52 run: a 3 s re-plan on a busy
                        # server reached the drone 0.02 s before its start)
                        t2 = None if clock is None else float(clock())
                        if t2 is None or t2 <= adv.start_s - self.advisory_notice_s:
                            break
                        live2 = self._all_live(t2)
                        fl = next((f for f in candidates(t2, live2) if f.flight_id == fid),
                                  fl)
                        adv = self.resolver.zone_advisory(
                            fl, t2, self._others(live2, t2), zone_id=zone_id)
                except Exception as exc:  # noqa: BLE001 - the next flights still get theirs
                    if not isinstance(exc, ResolutionError):
                        exc = f"{type(exc).__name__}: {exc}"
                    errors.append((fid, str(exc)))
                    with self._lock:
                        self.stats["zone_unresolved"] += 1
                        self.zone_failures.append((zone_id, fid, float(t), str(exc)))
                        del self.zone_failures[:-100]
                    continue
                with self._lock:
                    old = self._open_adv.get(fid)
                    if old is not None:
                        self._close(old, "superseded")
                    self._record(adv)
            advs.append(adv)
            if on_advisory is not None:
                on_advisory(adv)
        return advs, errors

    @staticmethod
    def warm_up(frame) -> None:
        """Compile (or load from the numba cache) every live kernel now, on a throwaway
        engine: the first real report or sweep must not pay for it (DESIGN: warm the
        kernels at server start)."""
        from skytwin.planner.timing import to_trajectory
        ops = LiveOps(frame=frame)
        tr = to_trajectory("warm", [[0, 0, 0], [0, 0, 30], [300, 0, 30], [300, 0, 0]], 0.0)
        ops.register("warm", "op", tr)
        ops.register("warm2", "op", tr.shifted(1.0))
        for t in (5.0, 6.0, 7.0):
            p = tr.position_at(t)
            lon, lat = frame.to_wgs84(p[0], p[1])
            ops.ingest("op", ["warm", "warm2"], [t, t], [lon, lon], [lat, lat],
                       [p[2], p[2] + 40.0], now_s=t, vel_mps=[[0, 0, 4], [0, 0, 4]])
            ops.tick(t + 0.5, resolve=False)

    def positions(self):
        """The live picture: the newest accepted report of every airborne flight
        (activated, nonconforming, contingent) that has one, as
        ``(flight_ids, operator_ids, states, t_s (n,), xyz_m (n, 3))`` (local frame,
        z AMSL); read-only copies (for the web map)."""
        with self._lock:
            fis = [fi for fi in self._flights.values() if fi.state in lc.AIRBORNE
                   and np.isfinite(self.track_state.last_t_s[fi.slot])]
            slots = np.array([fi.slot for fi in fis], np.int64)
            return ([fi.flight_id for fi in fis], [fi.operator_id for fi in fis],
                    [fi.state for fi in fis],
                    np.array(self.track_state.last_t_s[slots], np.float64),
                    np.array(self.track_state.last_xyz_m[slots], np.float64).reshape(-1, 3))

    def counts(self) -> dict:
        with self._lock:
            by = {}
            for fi in self._flights.values():
                by[fi.state] = by.get(fi.state, 0) + 1
            return {"flights": by, **self.stats, "tracks": len(self.tracks),
                    "track_rows_pending": self.tracks.pending,
                    "track_rows_dropped": self.tracks.dropped}


__all__ += ["PredictedLoss"]
