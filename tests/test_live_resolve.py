"""Tactical resolution on a real (synthetic) twin with the real planner and validator."""

from __future__ import annotations

import numpy as np
import pytest

from skytwin.airspace.twin import build_twin
from skytwin.airspace.zones import Altitude, Circle, Zone, ZoneLayer, \
    ground_range_from_grid
from skytwin.fixtures.synthetic_city import generate_city, synthetic_frame
from skytwin.live.errors import ResolutionError
from skytwin.live.resolve import LiveFlight, ResolutionParams, Resolver, choose_giver, \
    remaining
from skytwin.live.tactical import detect_losses, predict
from skytwin.planner.route import RouteRequest
from skytwin.planner.timing import SpeedProfile, to_trajectory
from skytwin.planner.trajectory import Trajectory
from skytwin.planner.validate import RouteValidator
from skytwin.planner.verify import verify

T0 = 1_000.0


@pytest.fixture(scope="module")
def world():
    frame = synthetic_frame()
    twin = build_twin(generate_city(size_m=800.0, n_buildings=200, seed=3, frame=frame),
                      frame=frame)
    zones = ZoneLayer(frame)
    res = Resolver(twin, zones)
    g = twin.grid
    cx, cy = 0.5 * (g.x0_m + g.x1_m), 0.5 * (g.y0_m + g.y1_m)

    def ll(x, y):
        return tuple(float(v) for v in frame.to_wgs84(x, y))

    ra = res.planner.plan(RouteRequest(ll(cx - 300, cy), ll(cx + 300, cy), depart_s=T0,
                                       flight_id="a"))
    # b flies a's route backwards, departing at the same time: a head-on loss mid-way
    b = to_trajectory("b", ra.trajectory.xyz_m[::-1], T0)
    return twin, zones, res, ra.trajectory, b, ll, (cx, cy)


def check_advisory(twin, zones, adv, keeper_plans, speeds=SpeedProfile()):
    """Independent checks of an advisory: validator (fresh instance), verifier."""
    v = RouteValidator(twin.buildings, twin.clearance_m)
    gr = ground_range_from_grid(twin.grid, twin.ground_m)
    rep = v.check(adv.route_xyz_m, adv.route_t_s, speeds,
                  zones=zones.local_zones(adv.route_t_s[0], adv.route_t_s[-1]),
                  ground_range=gr)
    assert rep.ok, rep
    assert verify([adv.trajectory, *keeper_plans], focus=[adv.flight_id]).ok
    # the advisory starts where the drone is at issue time and lands where planned
    assert adv.trajectory.t_s[0] == pytest.approx(adv.issued_s)
    assert np.allclose(adv.trajectory.xyz_m[-1], adv.route_xyz_m[-1])


def test_choose_giver_rules():
    tr = Trajectory("x", [[0, 0, 0], [0, 0, 10]], [0, 1])
    a = LiveFlight("a", tr, priority=1)
    b = LiveFlight("b", tr, priority=2)
    assert choose_giver(a, b) == (a, "priority")
    b.priority = 1
    assert choose_giver(a, b) == (None, "cost")
    a.state = "nonconforming"
    assert choose_giver(a, b) == (a, "conformance")
    a.state = "contingent"           # cannot follow advice: the other one gives way
    assert choose_giver(a, b) == (b, "contingent")


def test_head_on_lower_priority_gives_way(world):
    twin, zones, res, a, b, _, _ = world
    now = T0 + 10.0
    p = predict(now, plan_ids=["a", "b"], plan_trajs=[a, b], horizon_s=30)
    (loss,) = detect_losses(p)
    adv, rule = res.resolve(LiveFlight("a", a, priority=2), LiveFlight("b", b, priority=1),
                            now, others=[a, b], cause=("loss",))
    assert (adv.flight_id, rule, adv.reason) == ("b", "priority", "conflict")
    assert adv.cause == ("a", "loss")
    assert adv.start_s == now + res.params.reaction_s
    # b is where its plan puts it at the start of the new route
    assert np.allclose(adv.trajectory.position_at(adv.start_s), b.position_at(adv.start_s),
                       atol=0.02)
    check_advisory(twin, zones, adv, [a])
    p = predict(now, plan_ids=["a", "b"], plan_trajs=[a, adv.trajectory], horizon_s=120)
    assert detect_losses(p) == []
    assert adv.added_delay_s >= 0.0 and adv.tried >= 1


def test_equal_priority_takes_the_cheaper_and_nonconforming_uses_measurement(world):
    twin, zones, res, a, b, _, _ = world
    now = T0 + 10.0
    adv, rule = res.resolve(LiveFlight("a", a), LiveFlight("b", b), now, others=[a, b])
    assert rule == "cost"
    other = a if adv.flight_id == "b" else b
    alt = res.replan(LiveFlight(other.flight_id, other), now,
                     others=[a if other is b else b])
    assert adv.added_delay_s <= alt.added_delay_s
    # b drifted 6 m north and is measured: the new route starts from the measurement
    meas = b.position_at(now) + [0, 6.0, 0]
    vel = (b.position_at(now + 1) - b.position_at(now))
    fb = LiveFlight("b", b, state="nonconforming", measured_t_s=now,
                    measured_xyz_m=meas, measured_vel_mps=vel)
    adv, rule = res.resolve(LiveFlight("a", a), fb, now, others=[a, b])
    assert (adv.flight_id, rule) == ("b", "conformance")
    start = meas + vel * res.params.reaction_s
    assert np.allclose(adv.route_xyz_m[0], start, atol=0.01)
    check_advisory(twin, zones, adv, [a])


def test_zone_created_while_airborne_reroutes_only_flights_that_enter_it(world):
    twin, zones, res, a, b, ll, (cx, cy) = world
    now = T0 + 8.0
    far = to_trajectory("far", a.xyz_m + [0, 0, 0], T0 + 600)   # flies much later
    lon, lat = ll(cx + 60, cy)
    zone = Zone(id="POP-1", circle=Circle(lon, lat, 50.0), lower=Altitude(0, "AGL"),
                upper=Altitude(300, "AGL"), window=(now, now + 120))
    zones.add(zone)
    try:
        v = RouteValidator(twin.buildings, twin.clearance_m)
        assert not v.check(a.xyz_m, a.t_s, zones=zones.local_zones(now, now + 120)).ok
        advs, errors = res.zone_reroutes("POP-1", [LiveFlight("a", a),
                                                   LiveFlight("far", far)], now, others=[])
        assert errors == []
        assert [x.flight_id for x in advs] == ["a"]
        (adv,) = advs
        assert (adv.reason, adv.cause) == ("zone", ("POP-1",))
        check_advisory(twin, zones, adv, [])
    finally:
        zones.remove("POP-1")


def test_no_advisory_explains_why(world):
    twin, zones, res, a, b, ll, _ = world
    with pytest.raises(ResolutionError, match="lands before"):
        res.replan(LiveFlight("a", a), a.t_end_s - 1.0)
    # the goal enclosed by a zone for the rest of the day: every band fails, with reasons
    gx, gy = a.xyz_m[-1, :2]
    zones.add(Zone(id="GOAL", circle=Circle(*ll(gx, gy), 60.0), lower=Altitude(0, "AGL"),
                   upper=Altitude(300, "AGL"), window=(T0, T0 + 86400)))
    try:
        with pytest.raises(ResolutionError, match="band 10 m: planner"):
            res.replan(LiveFlight("a", a), T0 + 10.0)
    finally:
        zones.remove("GOAL")


def test_remaining():
    tr = Trajectory("t", [[0, 0, 0], [0, 0, 10], [100, 0, 10]], [0, 10, 20])
    r = remaining(tr, 15.0)
    assert r.t_s.tolist() == [15.0, 20.0] and r.xyz_m[0].tolist() == [50.0, 0.0, 10.0]
    assert remaining(tr, 20.0) is None and remaining(tr, -5.0) is tr
    assert ResolutionParams().reaction_s == 3.0
