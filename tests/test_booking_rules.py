"""The booking's building tests run where the plan was made (issue 14, item 2: the
booking critical section shrinks to what can change since the plan).

Rules: a plan carries the waypoints on which the independent route validator's
building tests passed (``Route.footprints_checked_xyz``); a booking of exactly those
waypoints (delays only) does not repeat them, any other geometry (a layer shift,
waypoints that differ from the checked ones, a plan whose tests failed) gets the full
tests, so a route through a building is refused whatever the plan claims. The
oracle for "through a building" is the footprint read here with shapely from the
twin's building list, not the validator.
"""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np
import pytest
from shapely.geometry import LineString

from skytwin.planner.route import RouteRequest
from skytwin.server.service import BookingRejectedError, Caller, ServiceCore
from skytwin.server.store import Store
from tests.grpc_fixtures import helsinki_twin

OP = Caller("a", "operator", "op-a")
META = {"priority": 1.0, "max_delay_s": 600.0, "speeds": {}}
T0 = float(int(time.time()) + 7200)
A, B = (24.94030, 60.17150), (24.95240, 60.16760)


@pytest.fixture
def core(tmp_path):
    twin, ref = helsinki_twin()
    c = ServiceCore(twin, Store(tmp_path / "b.db"), twin_ref=ref)
    yield c
    c.close()


def _spy(core, monkeypatch):
    seen = []
    real = core.validator.check

    def check(*a, **kw):
        seen.append(kw.get("buildings", True) and kw.get("zones") is not None)
        return real(*a, **kw)
    monkeypatch.setattr(core.validator, "check", check)
    return seen


def test_a_plan_carries_its_checked_waypoints_and_the_booking_skips_only_those(
        core, monkeypatch):
    route = core.plan(RouteRequest(A, B, depart_s=T0))
    assert np.array_equal(route.footprints_checked_xyz, route.trajectory.xyz_m)
    held = core.hold_plan(OP, "d", RouteRequest(A, B, depart_s=T0), META, route)
    seen = _spy(core, monkeypatch)
    rec, _ = core.submit_flight(OP, "r1", None, None, plan_id=held.plan_id)
    assert rec.meta["layer_shift"] == 0 and seen == [False]   # zones/times only


def _through_a_building(core, route):
    """``route`` with its cruise bent over the middle of a building footprint at
    half the building's height (found with shapely, independently of the validator)."""
    xyz = route.trajectory.xyz_m.copy()
    cruise = LineString(xyz[1:-1, :2])
    for b in core.twin.buildings:
        fp = b.footprint
        if fp.area > 200 and cruise.distance(fp) < 300 and b.top_m - xyz[1, 2] > -30:
            c = fp.representative_point()
            new = np.vstack([xyz[:2], [[c.x, c.y, xyz[1, 2]]], xyz[-2:]])
            new[2, 2] = max(0.0, float(b.top_m) - 5.0)
            new = np.round(new, 2)
            return new, b
    pytest.skip("no building near the route")


@pytest.mark.parametrize("claimed", ["original", "none"])
def test_a_route_through_a_building_is_refused_whatever_the_plan_claims(core, claimed):
    route = core.plan(RouteRequest(A, B, depart_s=T0))
    bad_xyz, b = _through_a_building(core, route)
    tr = route.trajectory
    t = np.linspace(tr.t_s[0], tr.t_s[-1], len(bad_xyz))
    bad = replace(route, xyz_m=bad_xyz, trajectory=type(tr)(
        tr.flight_id, bad_xyz, t, max_delay_s=tr.max_delay_s),
        footprints_checked_xyz=(tr.xyz_m.copy() if claimed == "original" else None))
    bad.ground_generation = route.ground_generation   # else planned again (a new route)
    held = core.hold_plan(OP, "d", RouteRequest(A, B, depart_s=T0), META, bad)
    with pytest.raises(BookingRejectedError, match="building"):
        core.submit_flight(OP, "r-bad", None, None, plan_id=held.plan_id)
    assert len(core.index) == 0 and core.store.count_flights() == 0
