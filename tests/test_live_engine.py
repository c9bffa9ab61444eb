"""The live engine with the simulator core, in process: real twin, planner, validator."""

from __future__ import annotations

import numpy as np
import pytest

from skytwin.airspace.zones import Altitude, Circle, Zone, ZoneLayer, \
    ground_range_from_grid
from skytwin.live.engine import LiveOps
from skytwin.live.errors import IllegalTransitionError, TransitionNotPermittedError
from skytwin.live.telemetry import ReportStatus as S
from skytwin.planner.timing import to_trajectory
from skytwin.planner.validate import RouteValidator
from skytwin.server.simulate import Fault, Fleet, InProcessLink, SimDrone, \
    assign_faults, zone_entries

from tests.live_world import T0, book, small_twin


@pytest.fixture(scope="module")
def world():
    twin = small_twin()
    return twin, book(twin, ZoneLayer(twin.frame), 36, seed=5)


def run(ops, fleet, t_from, t_to, on_tick=None):
    link = InProcessLink(ops, fleet)
    for t in np.arange(t_from, t_to, 1.0):
        link.step(float(t))
        if on_tick:
            on_tick(link, float(t))
    return link


def test_ingest_statuses_activation_and_commands(world):
    twin, trajs = world
    ops = LiveOps(twin, ZoneLayer(twin.frame))
    a, b = trajs[0], trajs[1]
    ops.register(a.flight_id, "op-a", a)
    ops.register(b.flight_id, "op-b", b)
    lon, lat = twin.frame.to_wgs84(a.xyz_m[0, 0], a.xyz_m[0, 1])
    t = a.t_start_s
    res = ops.ingest("op-a", [a.flight_id, b.flight_id, "nope", a.flight_id],
                     [t, t, t, t + 1], [lon] * 4, [lat] * 4, [a.xyz_m[0, 2]] * 4,
                     now_s=t + 1)
    assert [S(x).name for x in res.status] == ["OK", "FOREIGN_FLIGHT", "UNKNOWN_FLIGHT",
                                               "OK"]
    assert [(e.flight_id, e.to_state, e.actor, e.reason) for e in res.transitions] == [
        (a.flight_id, "activated", "service", "first_telemetry")]
    with pytest.raises(IllegalTransitionError):
        ops.command(a.flight_id, "activated", "operator", t + 2)   # already activated
    with pytest.raises(TransitionNotPermittedError):
        ops.command(a.flight_id, "nonconforming", "operator", t + 2)  # service only
    with pytest.raises(IllegalTransitionError):
        ops.command(b.flight_id, "ended", "operator", t + 2)       # never flew
    ev = ops.command(a.flight_id, "contingent", "regulator", t + 2, reason="ordered_down")
    assert (ev.from_state, ev.to_state) == ("activated", "contingent")
    ops.command(a.flight_id, "ended", "operator", t + 3)
    res = ops.ingest("op-a", [a.flight_id], [t + 4], [lon], [lat], [a.xyz_m[0, 2]],
                     now_s=t + 4)
    assert S(res.status[0]) == S.NOT_ACTIVE
    assert ops.tracks.track(a.flight_id)[0].tolist() == [t, t + 1]
    assert len(ops.tracks.drain()) == 2


def test_fleet_with_faults_detected_no_false_alarm_no_loss(world):
    twin, trajs = world
    ops = LiveOps(twin, ZoneLayer(twin.frame))
    drones = [SimDrone(tr.flight_id, 0, tr) for tr in trajs]
    for d in drones:
        ops.register(d.flight_id, "op", d.trajectory)
    rng = np.random.default_rng(11)
    n_f = assign_faults(drones, 0.3, rng)
    fleet = Fleet(drones, twin.frame, rng, t0_s=T0 - 5)
    t_end = max(d.trajectory.t_end_s for d in drones) + 70
    link = run(ops, fleet, T0 - 5, t_end)
    m = fleet.metrics()
    assert m["faults_injected"] == n_f >= 10
    assert set(m["faults_by_kind"]) == {"drift", "climb", "hold", "late", "lost_link"}
    assert m["faults_detected"] == n_f, m["faults_by_kind"]
    assert m["false_alarms"] == 0
    assert m["detect_p99_s"] <= 5.0
    assert m["losses_of_separation"] == 0, m["loss_pairs"]
    assert all(np.all(s != S.IMPOSSIBLE_JUMP) for s in link.statuses)
    # every healthy flight ended as landed, by the service
    ended = {e[0] for e in fleet.events if e[1] == "ended"}
    assert {d.flight_id for d in drones if d.fault is None} <= ended


def test_head_on_is_resolved_before_it_happens(world):
    twin, trajs = world
    zones = ZoneLayer(twin.frame)
    ops = LiveOps(twin, zones)
    a = trajs[0]
    # b flies a's route backwards at the same time: booked without strategic checks
    b = to_trajectory("b", a.xyz_m[::-1], a.t_start_s)
    drones = [SimDrone(a.flight_id, 0, a), SimDrone("b", 1, b)]
    ops.register(a.flight_id, "op", a, priority=2.0)
    ops.register("b", "op", b, priority=1.0)
    fleet = Fleet(drones, twin.frame, np.random.default_rng(2), t0_s=a.t_start_s - 5)
    # without resolution they would meet: the audit sees it
    dry = Fleet([SimDrone(a.flight_id, 0, a), SimDrone("b", 1, b)], twin.frame,
                np.random.default_rng(2), t0_s=a.t_start_s - 5)
    for t in np.arange(a.t_start_s - 5, a.t_end_s + 5, 1.0):
        dry.tick_reports(float(t))
    assert dry.metrics()["losses_of_separation"] == 1
    link = run(ops, fleet, a.t_start_s - 5, a.t_end_s + 60)
    m = fleet.metrics()
    assert link.conflicts_predicted >= 1
    assert m["advisories_accepted"] >= 1 and drones[1].accepted >= 1  # b gave way
    assert drones[0].accepted == 0
    assert m["losses_of_separation"] == 0
    assert m["false_alarms"] == 0


def test_popup_zone_reroutes_airborne_flights(world):
    twin, trajs = world
    zones = ZoneLayer(twin.frame)
    ops = LiveOps(twin, zones)
    drones = [SimDrone(tr.flight_id, 0, tr) for tr in trajs[:12]]
    for d in drones:
        ops.register(d.flight_id, "op", d.trajectory)
    fleet = Fleet(drones, twin.frame, np.random.default_rng(3), t0_s=T0 - 5)
    state = {}

    def popup(link, t):
        if state or t < T0 + 70:
            return
        # a zone on the path ahead of the first airborne drone, active from now
        d = next(d for d in drones if d.airborne(t + 40) and d.airborne(t))
        c = d.true_at(t + 25)
        zone = Zone(id="POP", circle=Circle(*twin.frame.to_wgs84(c[0], c[1]), 40.0),
                    lower=Altitude(0, "AGL"), upper=Altitude(300, "AGL"),
                    window=(t, t + 3600))
        zones.add(zone)
        state["advs"], state["errors"] = link.zone_added("POP", t)
        state["t"] = t
        state["target"] = d.flight_id

    run(ops, fleet, T0 - 5, max(d.trajectory.t_end_s for d in drones) + 80, popup)
    advs = state["advs"]
    assert state["errors"] == []
    assert state["target"] in {a.flight_id for a in advs}
    v = RouteValidator(twin.buildings, twin.clearance_m)
    gr = ground_range_from_grid(twin.grid, twin.ground_m)
    for adv in advs:
        assert v.check(adv.route_xyz_m, adv.route_t_s,
                       zones=zones.local_zones(adv.route_t_s[0], adv.route_t_s[-1]),
                       ground_range=gr).ok
    entered = zone_entries(drones, zones.local("POP"), fleet.truth, fleet.alive,
                           fleet.t0_s, 1.0, gr)
    assert entered == []
    assert fleet.metrics()["false_alarms"] == 0


def test_fault_models():
    from skytwin.planner.trajectory import Trajectory
    tr = Trajectory("f", [[0, 0, 0], [0, 0, 40], [1200, 0, 40], [1200, 0, 0]],
                    [0, 10, 110, 123.3])
    d = SimDrone("f", 0, tr, Fault("drift", 50.0, 5.0))
    assert np.allclose(d.true_at(52.0), [504, 10, 40])
    d = SimDrone("f", 0, tr, Fault("hold", 50.0))
    assert np.allclose(d.true_at(80.0), [480, 0, 40])
    d = SimDrone("f", 0, tr, Fault("late", 0.0, 60.0))
    assert np.allclose(d.true_at(30.0), [0, 0, 0]) and d.airborne(65) and not d.airborne(5)
    d = SimDrone("f", 0, tr, Fault("lost_link", 50.0))
    assert d.reports_at(49.0) and not d.reports_at(51.0)
    d = SimDrone("f", 0, tr, Fault("climb", 50.0, 3.0))
    assert np.allclose(d.true_at(100.0), [1080, 0, 100])   # +60 m at most


def test_fleet_truth_is_the_drone_model(world):
    twin, trajs = world
    drones = [SimDrone(tr.flight_id, 0, tr) for tr in trajs[:20]]
    assign_faults(drones, 0.5, np.random.default_rng(4))
    fleet = Fleet(drones, twin.frame, np.random.default_rng(5))
    for t in (T0 - 10, T0 + 30, T0 + 77.5, T0 + 200, T0 + 900):
        want = np.array([d.true_at(t) for d in drones])
        assert np.allclose(fleet.true_positions(t), want)
        fleet.tick_reports(t)
        assert fleet.alive[-1].tolist() == [d.airborne(t) for d in drones]


def test_zone_replans_use_their_own_time_and_supersede_open_advisories(world):
    """A zone re-plan starts from where the drone is when the re-plan is made (the
    clock), not when the zone appeared; a second zone supersedes the first advisory
    (its acceptance refused); an advisory planned from a trajectory the flight no
    longer has cannot be accepted."""
    from skytwin.live.errors import LiveInputError
    twin, trajs = world
    zones = ZoneLayer(twin.frame)
    ops = LiveOps(twin, zones)
    a = max(trajs, key=lambda tr: tr.t_end_s - tr.t_start_s)
    ops.register(a.flight_id, "op", a, state="activated", now_s=a.t_start_s)
    t = a.t_start_s + 15.0

    def zone_at(zid, t_ahead):
        c = a.position_at(t + t_ahead)
        zones.add(Zone(id=zid, circle=Circle(*twin.frame.to_wgs84(c[0], c[1]), 25.0),
                       lower=Altitude(0, "AGL"), upper=Altitude(300, "AGL"),
                       window=(t, t + 3600)))

    zone_at("Z1", 30.0)
    later = [t + 7.0]
    (adv1,), errors = ops.zone_added("Z1", t, clock=lambda: later[0])
    assert errors == []
    assert adv1.issued_s == t + 7.0 and adv1.start_s == t + 7.0 + 3.0
    assert np.allclose(adv1.trajectory.position_at(adv1.start_s),
                       a.position_at(adv1.start_s), atol=0.05)
    zone_at("Z2", 20.0)
    (adv2,), _ = ops.zone_added("Z2", t, clock=lambda: later[0])
    with pytest.raises(LiveInputError, match="superseded"):
        ops.answer_advisory(adv1.advisory_id, True, None, t + 8.0)
    # a stale advisory: planned from the approved plan, which then changed
    stale = ops.resolver.replan(ops._live_flight(ops.get(a.flight_id)), t + 8.0, [],
                                reason="zone", cause=("Z2",))
    with ops._lock:
        ops._close(adv2.advisory_id, "refused")
        ops._record(stale)
    ops.get(a.flight_id).trajectory = adv2.trajectory      # as if adv2 was accepted
    with pytest.raises(LiveInputError, match="no longer has"):
        ops.answer_advisory(stale.advisory_id, True, None, t + 9.0)
    assert ops.advisories[stale.advisory_id][1] == "superseded"


def test_zone_audit_counts_entries_after_the_reaction_time_only():
    from skytwin.airspace.zones import LocalZone
    from skytwin.fixtures.synthetic_city import synthetic_frame
    from skytwin.planner.trajectory import Trajectory
    from skytwin.server.simulate import zone_audit
    frame = synthetic_frame()
    lz = LocalZone(Zone(id="Z", circle=Circle(*frame.to_wgs84(0.0, 0.0), 50.0),
                        lower=Altitude(0, "AGL"), upper=Altitude(300, "AGL"),
                        window=(100.0, 1000.0)), frame)

    def east(fid, t_at_centre):   # 10 m/s west to east through the centre at 40 m
        return Trajectory(fid, [[-600, 0, 40], [600, 0, 40]],
                          [t_at_centre - 60, t_at_centre + 60])

    late = east("late", 130.0)       # reaches the edge 25 s after creation: must avoid
    early = east("early", 108.0)     # inside 3 s after creation: exempt
    north = Trajectory("north", [[0, -600, 40], [0, -60, 40], [600, -60, 40]],
                       [60, 114, 174])   # passes 60 m south of the centre: never in
    drones = [SimDrone(t.flight_id, 0, t) for t in (late, early, north)]
    fleet = Fleet(drones, frame, np.random.default_rng(0), t0_s=60.0, step_s=0.5)
    for t in np.arange(60.0, 200.0, 0.5):
        fleet.record_truth(float(t))
    entered, exempt = zone_audit(drones, {d.flight_id: d.trajectory for d in drones}, lz,
                                 fleet.truth, fleet.alive, 60.0, 0.5, 100.0, 10.0)
    assert [f for f, _ in entered] == ["late"]
    assert entered[0][1] == pytest.approx(125.0, abs=0.5)
    assert [f for f, _ in exempt] == ["early"]
    # the same drone re-routed 80 m north before the zone: not an entry
    drones[0].trajectory = Trajectory("late", [[-600, 0, 40], [-200, 0, 40],
                                               [0, 80, 40], [200, 0, 40], [600, 0, 40]],
                                      [70, 110, 132.4, 154.8, 194.8])
    fleet = Fleet(drones, frame, np.random.default_rng(0), t0_s=60.0, step_s=0.5)
    for t in np.arange(60.0, 200.0, 0.5):
        fleet.record_truth(float(t))
    entered, _ = zone_audit(drones, {d.flight_id: d.trajectory for d in drones}, lz,
                            fleet.truth, fleet.alive, 60.0, 0.5, 100.0, 10.0)
    assert entered == []


def test_positions_is_the_newest_report_of_airborne_flights(world):
    twin, trajs = world
    ops = LiveOps(twin, ZoneLayer(twin.frame))
    a, b = trajs[0], trajs[1]
    ops.register(a.flight_id, "op-a", a)
    ops.register(b.flight_id, "op-b", b)
    for dt in (0.0, 1.0):
        t = a.t_start_s + dt
        lon, lat = twin.frame.to_wgs84(a.xyz_m[0, 0], a.xyz_m[0, 1])
        ops.ingest("op-a", [a.flight_id], [t], [lon], [lat], [a.xyz_m[0, 2] + dt],
                   now_s=t)
    ids, opers, states, t_s, xyz = ops.positions()
    assert (ids, opers, states) == ([a.flight_id], ["op-a"], ["activated"])
    assert t_s.tolist() == [a.t_start_s + 1.0]
    assert np.allclose(xyz, [[*a.xyz_m[0, :2], a.xyz_m[0, 2] + 1.0]], atol=1e-3)


def test_assign_faults_reaches_the_share_when_some_flights_already_left(world):
    _, trajs = world
    drones = [SimDrone(tr.flight_id, 0, tr) for tr in trajs[:20]]
    deps = sorted(d.trajectory.t_start_s for d in drones)
    lo, hi = deps[10], deps[10] + 200.0     # half the fleet left before the run starts
    n = assign_faults(drones, 0.25, np.random.default_rng(1), window=(lo, hi))
    faulty = [d for d in drones if d.fault is not None]
    assert n == len(faulty) == 5
    for d in faulty:
        if d.fault.kind == "late":
            assert lo - 5.0 <= d.trajectory.t_start_s <= hi
        else:
            assert max(d.trajectory.t_start_s + 8.0, lo) <= d.fault.onset_s \
                <= min(d.trajectory.t_end_s - 15.0, hi)


def test_a_zone_advisory_ready_too_late_is_made_again(world):
    """A re-plan that takes longer than the reaction time (a busy server) makes an
    advisory whose start has nearly passed when it is ready; it is made again from the
    clock then (17:52 run: the target refused such an advisory and entered the zone)."""
    twin, trajs = world
    zones = ZoneLayer(twin.frame)
    ops = LiveOps(twin, zones)
    tr = max(trajs, key=lambda x: x.t_end_s - x.t_start_s)
    ops.register(tr.flight_id, "op", tr, state="activated", now_s=tr.t_start_s)
    t = tr.t_start_s + 12.0
    c = tr.position_at(t + 25.0)
    lon, lat = twin.frame.to_wgs84(c[0], c[1])
    zones.add(Zone(id="LATE", circle=Circle(float(lon), float(lat), 40.0),
                   lower=Altitude(0, "AGL"), upper=Altitude(500, "AGL"),
                   window=(t, t + 3600)))
    ticks = iter([t, t + 3.0])          # the first re-plan "took" 3 s; then 0.1 s each
    last = [t + 3.0]

    def clock():
        v = next(ticks, None)
        if v is None:
            last[0] += 0.1
            v = last[0]
        return v

    advs, errors = ops.zone_added("LATE", t, clock=clock)
    assert errors == [] and len(advs) == 1
    (adv,) = advs
    assert adv.issued_s >= t + 3.0 and adv.start_s - last[0] >= ops.advisory_notice_s
