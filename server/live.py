"""Live operations in the server: the hub between gRPC, the store and ``skytwin.live``.

Design
------
One :class:`LiveHub` per server wraps a :class:`skytwin.live.engine.LiveOps` (the pure
core: validation, conformance, prediction, resolution) and adds what needs a process:

* **Bookings in.** The hub subscribes to the service core's change log: an accepted
  flight is registered (state ``accepted``), a cancelled one is cancelled, a new zone
  starts the zone re-planning on the hub's worker thread (not in the publisher).
* **Durable transitions.** Every lifecycle transition (service, operator or regulator)
  is written to the store's ``lifecycle`` table *before* it is acknowledged or
  published: a report's ack travels in the same response as the events it caused,
  and that response is only sent after the commit (group commit keeps this cheap:
  transitions are rare next to reports). After a SIGKILL the server restarts with
  every acknowledged transition, and the flights' states come back from the table.
* **Tracks.** Accepted reports are kept in memory (:class:`skytwin.live.tracks.Tracks`:
  the newest 512 per flight) and written to the store's ``track_points`` table in
  batches by the persistence thread every ``persist_s`` (default 1 s, one transaction
  per batch). Retention in the store: ``track_retention_s`` (default 7 days), pruned
  by the same thread once per hour. Reports acknowledged but not yet persisted are
  lost on a kill (at most ``persist_s`` of positions): position history is a replay
  aid, not an acknowledged state change.
* **One sweep thread** applies the conformance timers of all flights at once every
  ``sweep_s`` (0.25 s: a silent drone is declared within a quarter of a second of its
  3 s of silence; one sweep of 5,000 flights takes 0.2 ms), and **one prediction
  thread** predicts and resolves every ``tick_s`` (1 s). Transitions are stored, then
  published; advisories are published to the owning operator.
* **No collector pauses.** Once started (twin loaded, kernels and planner tables
  warm, flights restored), the hub moves every object alive into the collector's
  permanent generation (``gc.freeze``): a full collection would otherwise walk the
  twin's geometry and tables with every thread stopped, measured at 75-97 ms once
  every ~10 s under 5,000 reports/s, most of the ingestion p99. Objects made later
  are collected as usual (``freeze_gc=False`` turns this off).
* **Publication.** Subscribers (the telemetry streams of an operator, Watch streams)
  register a callback; operators get the events and advisories of their own flights,
  regulators everything. Events also go on the core's Watch stream as
  ``flight_state`` changes.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from dataclasses import replace

import numpy as np

from skytwin.live import lifecycle as lc
from skytwin.live.conformance import ConformanceParams
from skytwin.live.engine import LiveOps
from skytwin.live.errors import LiveInputError
from skytwin.live.resolve import ResolutionParams, Resolver
from skytwin.server.store import CommitUncertainError

log = logging.getLogger("skytwin.live")

__all__ = ["LiveHub"]


class LiveHub:
    """See module docstring."""

    def __init__(self, core, *, clock=time.time, tick_s: float = 1.0,
                 sweep_s: float = 0.25, persist_s: float = 1.0, track_retention_s: float = 7 * 86400.0,
                 conformance: ConformanceParams | None = None,
                 resolution: ResolutionParams | None = None, start: bool = True,
                 freeze_gc: bool = True):
        from skytwin.planner.route import Planner
        self.core = core
        self.store = core.store
        self.clock = clock
        self.tick_s = float(tick_s)
        self.sweep_s = float(sweep_s)
        self.persist_s = float(persist_s)
        self.track_retention_s = float(track_retention_s)
        resolver = Resolver(core.twin, core.zones, resolution,
                            # derived zones too (issue 13; conservative: all but warnings)
                            planner=Planner(core.twin, core.ground.zone_view(core.zones),
                                            checker=core.checker),
                            validator=core.validator)
        self.ops = LiveOps(core.twin, core.zones, conformance=conformance,
                           resolver=resolver)
        self._subs: list = []           # (operator_id or None, callback)
        self._subs_lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._work: list = []
        self._work_cv = threading.Condition()
        self.last_tick = None
        self.tick_ms: list[float] = []
        self.zone_retries = 6           # a zone re-plan that failed is tried again ...
        self.zone_retry_s = 3.0         # ... this much later
        LiveOps.warm_up(core.twin.frame)
        self._warm_resolver()
        self._restore()
        core.subscribe(self._on_change)
        if freeze_gc:
            gc.collect()
            gc.freeze()
        if start:
            self.start()

    # ------------------------------------------------------------------ restore
    def _restore(self) -> None:
        now = self.clock()
        states = self.store.lifecycle_states()
        n = 0
        for rec in self.store.accepted_flights(t_from_s=now - 3600.0):
            st = states.get(rec.flight_id, (lc.ACCEPTED, None))[0]
            if st in lc.TERMINAL:
                continue
            self.ops.register(rec.flight_id, rec.operator_id, rec.trajectory,
                              priority=rec.priority, state=st, now_s=now)
            n += 1
        log.info("live hub: %d flights restored (%d with a lifecycle state)", n,
                 len(states))

    def _warm_resolver(self) -> None:
        """One re-plan with a conflict check, so the resolver's kernels (search,
        verifier) are loaded before the first real advisory, then one plan per
        resolution band: the planner builds its whole-twin limit pyramids and reach
        labels once per cruise floor (about 1.5 s each on a 10 km twin), and the first
        advisory in a band must not pay for it."""
        self._warm_replan()
        res = self.ops.resolver
        prepare = getattr(res.planner, "prepare", None)
        for band in res.params.bands_min_agl_m if prepare is not None else ():
            try:
                prepare(float(band), res.params.ceiling_agl_m)
            except Exception:  # noqa: BLE001 - best effort
                log.exception("warming band %g m failed", band)

    def _warm_replan(self) -> None:
        from skytwin.live.resolve import LiveFlight
        from skytwin.planner.route import PlanError, RouteRequest
        tw = self.core.twin
        g = tw.grid
        cx, cy = 0.5 * (g.x0_m + g.x1_m), 0.5 * (g.y0_m + g.y1_m)
        now = self.clock()
        for dx in (0.0, 40.0, -40.0, 80.0):
            a = tw.frame.to_wgs84(cx + dx, cy + dx)
            b = tw.frame.to_wgs84(cx + dx + 150.0, cy + dx)
            try:
                r = self.ops.resolver.planner.plan(RouteRequest(
                    (float(a[0]), float(a[1])), (float(b[0]), float(b[1])), depart_s=now,
                    flight_id="warm-up"))
                tr = r.trajectory
                other = tr.shifted(2.0)
                self.ops.resolver.replan(LiveFlight("warm-up", tr), now + 2.0,
                                         [type(other)("warm-other", other.xyz_m,
                                                      other.t_s)])
                return
            except (PlanError, Exception):  # noqa: BLE001 - warm-up is best effort
                continue

    # ------------------------------------------------------------------ threads
    def start(self) -> None:
        for name, fn in (("live-sweep", self._sweep_loop),
                         ("live-resolve", self._resolve_loop),
                         ("live-persist", self._persist_loop),
                         ("live-work", self._work_loop)):
            th = threading.Thread(target=fn, name=name, daemon=True)
            th.start()
            self._threads.append(th)

    def close(self) -> None:
        self._stop.set()
        with self._work_cv:
            self._work_cv.notify_all()
        for th in self._threads:   # daemon threads; a re-plan in progress is not waited
            th.join(2.0)           # for long (it checks the stop flag between flights)
        self._flush_tracks()
        try:
            self.core.unsubscribe(self._on_change)
        except Exception:  # noqa: BLE001 - closing anyway
            pass

    def _sweep_loop(self) -> None:
        """Conformance timers every ``sweep_s``; never waits for a re-plan."""
        self._every(lambda: self._commit(self.ops.sweep(self.clock())), "sweep",
                    self.sweep_s)

    def _resolve_loop(self) -> None:
        """Prediction and resolution every ``tick_s`` (a slow round delays the next
        one, never the sweep or the ingestion)."""
        self._every(lambda: self.tick(self.clock(), sweep=False), "prediction",
                    self.tick_s)

    def _every(self, fn, what, period_s) -> None:
        nxt = time.monotonic()
        while not self._stop.is_set():
            nxt += period_s
            try:
                fn()
            except Exception:  # noqa: BLE001 - the loop must go on
                log.exception("live %s failed", what)
            delay = nxt - time.monotonic()
            if delay < 0:
                nxt = time.monotonic()
                delay = 0
            self._stop.wait(delay)

    def _persist_loop(self) -> None:
        last_prune = 0.0
        while not self._stop.wait(self.persist_s):
            self._flush_tracks()
            now = self.clock()
            if now - last_prune > 3600.0:
                last_prune = now
                try:
                    self.store.prune_track_points(now - self.track_retention_s)
                except Exception:  # noqa: BLE001
                    log.exception("track pruning failed")

    def _flush_tracks(self) -> None:
        rows = self.ops.tracks.drain()
        if not rows:
            return
        try:
            self.store.add_track_points(rows)
        except Exception:  # noqa: BLE001 - keep them for the next round
            log.exception("track persistence failed; %d rows re-queued", len(rows))
            self.ops.tracks.requeue(rows)

    def _work_loop(self) -> None:
        while not self._stop.is_set():
            with self._work_cv:
                while not self._work and not self._stop.is_set():
                    self._work_cv.wait(1.0)
                if self._stop.is_set():
                    return
                job = self._work.pop(0)
            try:
                job()
            except Exception:  # noqa: BLE001
                log.exception("live job failed")

    def _submit(self, job) -> None:
        with self._work_cv:
            self._work.append(job)
            self._work_cv.notify()

    # ------------------------------------------------------------------ changes in
    def _on_change(self, ch) -> None:
        if ch.kind == "flight_accepted" and ch.flight is not None:
            rec = ch.flight
            self.ops.register(rec.flight_id, rec.operator_id, rec.trajectory,
                              priority=rec.priority)
        elif ch.kind == "flight_cancelled" and ch.flight is not None:
            # recorded on the worker thread: publishing from inside the core's publish
            # would deliver the new change before this one to later subscribers
            self._submit(lambda: self._cancelled(ch))
        elif ch.kind in ("zone_added", "zone_updated") and ch.zone is not None:
            zid = ch.zone.id
            self._submit(lambda: self.zone_added(zid))

    def _cancelled(self, ch) -> None:
        fid = ch.flight.flight_id
        if self.ops.state_of(fid) != lc.ACCEPTED:
            return
        # the change carries the caller's name, not its role: a cancellation with a
        # reason is recorded as the regulator's (a regulator must give one for another
        # operator's flight), the caller's name goes into the detail
        actor = lc.REGULATOR if ch.reason else lc.OPERATOR
        self._commit([self.ops.command(
            fid, lc.CANCELLED, actor, ch.time_s, reason="cancelled",
            detail=f"by {ch.actor}" + (f": {ch.reason}" if ch.reason else ""))])

    # ------------------------------------------------------------------ publication
    def subscribe(self, operator_id, callback) -> None:
        """``callback(kind, obj)`` with kind ``"event"`` or ``"advisory"``, for the
        flights of ``operator_id`` (None: every flight, for regulators)."""
        with self._subs_lock:
            self._subs.append((operator_id, callback))

    def unsubscribe(self, callback) -> None:
        with self._subs_lock:
            self._subs = [s for s in self._subs if s[1] is not callback]

    def _owner(self, flight_id):
        fi = self.ops.get(flight_id)
        return None if fi is None else fi.operator_id

    def _publish(self, kind, items) -> None:
        if not items:
            return
        with self._subs_lock:
            subs = list(self._subs)
        for it in items:
            owner = self._owner(it.flight_id)
            for op, cb in subs:
                if op is None or op == owner:
                    try:
                        cb(kind, it)
                    except Exception:  # noqa: BLE001 - a broken stream
                        log.exception("live subscriber failed")

    def _commit(self, events) -> list:
        """Store the transitions (durably), then publish them; returns them with
        their store sequence numbers as ``(seq, event)`` pairs."""
        if not events:
            return []
        seqs = self.store.add_lifecycle_events(
            [(e.flight_id, e.from_state, e.to_state, e.actor, e.t_s, e.reason, e.detail)
             for e in events])
        out = list(zip(seqs, events, strict=True))
        self._publish("event", [_Seq(s, e) for s, e in out])
        for e in events:   # the Watch stream (the store row was written with it)
            self.core.publish_flight_state(e.flight_id, e.actor, e.to_state,
                                           f"{e.from_state}->{e.to_state}: {e.reason}")
        return out

    # ------------------------------------------------------------------ API
    def ingest(self, operator_id, flight_ids, t_s, lon, lat, alt, vel=None, acc_h=None,
               acc_v=None):
        """Validate and apply reports; transitions are durable when this returns.

        Returns ``(status, [(seq, Transition)])``."""
        res = self.ops.ingest(operator_id, flight_ids, t_s, lon, lat, alt,
                              now_s=self.clock(), vel_mps=vel, acc_h_m=acc_h,
                              acc_v_m=acc_v)
        return res.status, self._commit(res.transitions)

    def tick(self, now_s: float, sweep: bool = True):
        events = self.ops.sweep(now_s) if sweep else []
        self._commit(events)
        # each advisory goes out as soon as it is made, with its own decision time
        res = self.ops.predict_and_resolve(
            now_s, clock=self.clock, on_advisory=lambda a: self._publish("advisory", [a]))
        res.transitions = events
        for key, why in res.failures:
            log.info("no advisory for predicted loss %s/%s: %s", key[0], key[1], why)
        self.ops.expire_advisories(now_s)
        if int(now_s) % 60 == 0:
            self.ops.forget(now_s)
        self.last_tick = res
        self.tick_ms.append(res.tick_ms)
        del self.tick_ms[:-600]
        return res

    def zone_added(self, zone_id: str, only=None, attempt: int = 0):
        """Re-plan the flights entering a new zone; the ones with no conflict-free
        reroute now are tried again ``zone_retry_s`` later (traffic moves on), up to
        ``zone_retries`` times, while they still enter it."""
        from skytwin.airspace.zones import ZoneNotFoundError
        try:
            advs, errors = self.ops.zone_added(
                zone_id, self.clock(), on_advisory=lambda a: self._publish("advisory", [a]),
                stop=self._stop.is_set, clock=self.clock, only=only)
        except ZoneNotFoundError:
            return [], []              # removed meanwhile: nothing to avoid any more
        for adv in advs:
            log.info("zone %s: advisory %s (%s, start in %.1f s) for flight %s", zone_id,
                     adv.advisory_id, adv.kind, adv.start_s - adv.issued_s, adv.flight_id)
        last = attempt >= self.zone_retries
        for fid, msg in errors:
            # every flight that would enter the zone and gets no advisory, with why
            log.log(logging.ERROR if last else logging.WARNING,
                    "no advisory (reroute or land-short) around zone %s for flight %s "
                    "(attempt %d of %d%s): %s", zone_id, fid, attempt + 1,
                    self.zone_retries + 1, ", giving up" if last else "", msg)
        if errors and not last and not self._stop.is_set():
            again = {fid for fid, _ in errors}
            t = threading.Timer(self.zone_retry_s, lambda: self._submit(
                lambda: self.zone_added(zone_id, only=again, attempt=attempt + 1)))
            t.daemon = True
            t.start()
        return advs, errors

    def command(self, caller_role, caller_operator, flight_id, to_state, reason=""):
        """An operator or regulator command; returns ``(seq, Transition)``."""
        fi = self.ops.get(flight_id)
        if fi is None:
            raise KeyError(flight_id)
        if caller_role != "regulator" and fi.operator_id != caller_operator:
            raise PermissionError(f"flight {flight_id} belongs to another operator")
        actor = lc.REGULATOR if caller_role == "regulator" else lc.OPERATOR
        ev = self.ops.command(flight_id, to_state, actor, self.clock(),
                              reason=reason or "declared")
        return self._commit([ev])[0]

    def answer(self, operator_id, advisory_id, accept: bool):
        """Accept or refuse an advisory; an accepted one is stored as the flight's
        approved trajectory (and replaces it in the strategic index).

        An advisory was made clear of the plans known when it was issued; a booking
        accepted since was placed against the flight's approved trajectory, not the
        advisory. So an acceptance re-checks the advisory against the strategic index
        and swaps it in with the booking gate held exclusively (no booking between the
        check and the swap; with a shared store every instance's); one that lost
        separation with a flight booked since is superseded (a zone re-plan is tried
        again) and refused with LiveInputError."""
        if not accept:
            return self._answer(operator_id, advisory_id, accept)
        core = self.core
        with core._book, core._booking_lock():    # (every instance, shared store)
            if core._shared:
                with core._state:
                    core._sync_locked()
            self._recheck(operator_id, advisory_id)
            return self._answer(operator_id, advisory_id, accept)

    def _recheck(self, operator_id, advisory_id) -> None:
        from skytwin.planner.verify import verify
        entry = self.ops.advisories.get(advisory_id)
        if entry is None or entry[1] != "issued":
            return                       # _answer says why
        adv = entry[0]
        fi = self.ops.get(adv.flight_id)
        if fi is None or (operator_id is not None and fi.operator_id != operator_id):
            return                       # _answer refuses it
        tr = adv.trajectory
        why = self._zone_problem(adv)
        if why is None:
            # what the resolver checked against: plans of the flights following theirs
            # (a nonconforming one was avoided by its measured state, not its stale
            # plan)
            near = [o for o in self.core.index.near([tr], max_delay_s=0.0)
                    if o.flight_id != tr.flight_id
                    and self.ops.state_of(o.flight_id) in (None, lc.ACCEPTED,
                                                           lc.ACTIVATED)]
            if not near:
                return
            vr = verify([tr, *near], self.core.sep, focus=[tr.flight_id])
            if not any(tr.flight_id in (c.flight_a, c.flight_b)
                       for c in vr.residual_conflicts):
                return
            why = "is no longer clear of the flights booked since it was issued"
        with self.ops._lock:
            if self.ops.advisories.get(advisory_id, (None, ""))[1] == "issued":
                self.ops._close(advisory_id, "superseded")
        follows = ""
        if adv.reason == "zone":
            self._submit(lambda: self.zone_added(adv.cause[0], only={adv.flight_id}))
            follows = " (a new advisory for the zone follows)"
        raise LiveInputError(f"advisory {advisory_id} {why}; keep flying the approved "
                             "plan" + follows)

    def _zone_problem(self, adv):
        """Why advisory ``adv`` may not be flown because of the zones in force now (a
        zone created or changed since it was issued: the zone's affected list and the
        hub's zone re-plan look at the approved plan, not at open advisories), or
        None. What the resolver validated at issue: the part from its start point on
        (before it, the drone flies its approved path), against the regulators' zones
        active then and the derived zones that block everyone (its planner avoided
        every non-warning derived zone)."""
        from skytwin.live.resolve import remaining
        core = self.core
        rem = remaining(adv.trajectory, max(self.clock(), adv.start_s))
        if rem is None:
            return None
        zones = [*core.zones.local_zones(rem.t_start_s, rem.t_end_s),
                 *core.ground.blocking_everyone()]
        if not zones:
            return None
        xyz, t = rem.xyz_m, rem.t_s
        if len(xyz) < 4:     # the validator wants take-off, cruise and landing points
            xyz = np.vstack([xyz[:1], xyz, xyz[-1:], xyz[-1:]])
            t = np.concatenate([t[:1], t, t[-1:], t[-1:]])
        rep = core.zone_validator.check(xyz, t, zones=zones,
                                        ground_range=core.ground_range, buildings=False)
        bad = [p for p in rep.problems if "no-fly volume" in p]
        return f"enters a no-fly zone in force now ({bad[0]})" if bad else None

    def _answer(self, operator_id, advisory_id, accept: bool):
        try:
            adv = self.ops.answer_advisory(advisory_id, accept, operator_id, self.clock())
        except LiveInputError:
            entry = self.ops.advisories.get(advisory_id)
            if entry is not None and entry[1] == "superseded" and entry[0].reason == "zone":
                # its flight changed plan meanwhile: check the new plan against the zone
                adv0 = entry[0]
                self._submit(lambda: self.zone_added(adv0.cause[0], only={adv0.flight_id}))
            raise
        if not accept and adv.reason == "zone":
            # refused (e.g. it reached the drone too late): the flight still heads for
            # the zone, so it is re-planned (if its plan still enters it)
            self._submit(lambda: self.zone_added(adv.cause[0], only={adv.flight_id}))
        if accept:
            tw = self.core.twin
            xyz = adv.trajectory.xyz_m
            lon, lat = tw.frame.to_wgs84(xyz[:, 0], xyz[:, 1])
            g = tw.grid
            i = np.clip(((xyz[:, 0] - g.x0_m) // g.dx_m).astype(np.int64), 0, g.nx - 1)
            j = np.clip(((xyz[:, 1] - g.y0_m) // g.dx_m).astype(np.int64), 0, g.ny - 1)
            agl = np.round(xyz[:, 2] - tw.ground_m[i, j].astype(np.float64), 2)
            idx = self.core.index
            try:
                self.store.replace_trajectory(adv.flight_id, adv.trajectory,
                                              np.column_stack([lon, lat]), agl,
                                              self.clock(), actor=operator_id or "service",
                                              reason=f"advisory {advisory_id}")
            except CommitUncertainError:
                # the new route may be on disk, or the old one may still be: both stay
                # reserved (the new one under a placeholder id) until a restart
                # rebuilds the index from the store
                held = replace(adv.trajectory, flight_id=f"{adv.flight_id}#{advisory_id}")
                with self.core._book:
                    if held.flight_id not in idx:
                        idx.accept(held)
                raise
            with self.core._book:   # the booking lock guards the strategic index
                if adv.flight_id in idx:
                    idx.cancel(adv.flight_id)
                idx.accept(adv.trajectory)
        return adv

    def status(self) -> dict:
        c = self.ops.counts()
        lt = self.last_tick
        c["last_tick_ms"] = None if lt is None else round(lt.tick_ms, 2)
        c["predicted"] = None if lt is None else lt.predicted
        return c


class _Seq:
    """A transition with its store sequence number (what subscribers receive)."""

    __slots__ = ("event", "flight_id", "seq")

    def __init__(self, seq, event):
        self.seq = seq
        self.event = event
        self.flight_id = event.flight_id
