"""Reachability of free air (planner/reach.py) and the planner's fast refusal of a goal
no route can enter (issue 14: such a goal cost 10-15 s of search per PlanRoute).

The oracle labels the 3D free voxels with ``scipy.ndimage.label`` (6-connectivity: the
strict rule's connectivity), independently of the column-interval reasoning of the
kernel; the courtyard test builds its own buildings and checks the refusal's message.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from scipy import ndimage
from shapely.geometry import box

from skytwin.airspace.building import Building
from skytwin.airspace.frame import Frame
from skytwin.airspace.twin import build_twin
from skytwin.planner.reach import column_components
from skytwin.planner.route import PlanError, Planner, RouteRequest


def _oracle_same(floor, ceil, nz):
    """Column pairs in one component, from the 3D voxels (6-connected)."""
    k = np.arange(nz)
    free = (k[None, None, :] >= floor[:, :, None]) & (k[None, None, :] <= ceil[:, :, None])
    lab, _ = ndimage.label(free)
    # every column's free voxels are one interval, hence one 3D label
    col = np.where(free.any(axis=2), lab.max(axis=2), -1)
    return col


@pytest.mark.parametrize("seed", range(6))
def test_labels_equal_the_3d_components(seed):
    rng = np.random.default_rng(seed)
    nx, ny, nz = 23, 17, 12
    floor = rng.integers(0, nz + 2, size=(nx, ny))
    ceil = rng.integers(-1, nz, size=(nx, ny))
    floor[rng.random((nx, ny)) < 0.5] = 0           # enough open air to connect
    ceil[rng.random((nx, ny)) < 0.5] = nz - 1
    ceil = np.minimum(ceil, nz - 1)
    got = column_components(floor, ceil)
    want = _oracle_same(floor, ceil, nz)
    assert np.array_equal(got < 0, want < 0)
    a = got[got >= 0]
    b = want[want >= 0]
    # the same partition: the label pairs map one to one
    pairs = set(zip(a.tolist(), b.tolist(), strict=True))
    assert len(pairs) == len(set(a.tolist())) == len(set(b.tolist()))


def test_shape_mismatch_is_a_clear_error():
    with pytest.raises(ValueError, match="one shape"):
        column_components(np.zeros((3, 3)), np.zeros((3, 4)))


@pytest.fixture(scope="module")
def courtyard_twin():
    """A closed ring of 200 m blocks (above the 120 m ceiling) around a 40 m yard,
    in open ground 600 m wide."""
    frame = Frame(24.94, 60.17)
    walls = [box(-60, -60, 60, -30), box(-60, 30, 60, 60), box(-60, -30, -30, 30),
             box(30, -30, 60, 30)]
    blds = [Building(f"wall-{n}", w, 0.0, 200.0, 0.0) for n, w in enumerate(walls)]
    blds.append(Building("far", box(200, 200, 220, 220), 0.0, 20.0, 0.0))
    return build_twin(blds, frame=frame, margin_m=300.0)


def test_goal_in_a_closed_courtyard_is_refused_at_once(courtyard_twin):
    tw = courtyard_twin
    p = Planner(tw)
    start = tw.frame.to_wgs84(-250.0, -250.0)
    yard = tw.frame.to_wgs84(0.0, 0.0)
    t0 = time.process_time()
    with pytest.raises(PlanError, match=r"goal lies in a pocket of free air") as e:
        p.plan(RouteRequest(tuple(map(float, start)), tuple(map(float, yard)),
                            depart_s=1_800_000_000.0))
    assert e.value.code == "no_route"
    assert "courtyard" in str(e.value)
    # no search ran (a generous bound: an exhausted search of this window takes seconds)
    assert time.process_time() - t0 < 5.0
    # the same yard from inside it: the start is the pocket
    with pytest.raises(PlanError, match=r"start lies in a pocket"):
        p.plan(RouteRequest(tuple(map(float, yard)), tuple(map(float, start)),
                            depart_s=1_800_000_000.0))
    # open air to open air still plans
    other = tw.frame.to_wgs84(250.0, -250.0)
    r = p.plan(RouteRequest(tuple(map(float, start)), tuple(map(float, other)),
                            depart_s=1_800_000_000.0))
    assert r.length_m > 400.0


def test_lower_ceiling_than_the_walls_only_matters_when_they_reach_it(courtyard_twin):
    """The labels depend on the ceiling: a yard in a ring of 20 m blocks is reachable
    (cached per altitude band, not once for all)."""
    frame = Frame(24.94, 60.17)
    walls = [box(-60, -60, 60, -30), box(-60, 30, 60, 60), box(-60, -30, -30, 30),
             box(30, -30, 60, 30)]
    blds = [Building(f"low-{n}", w, 0.0, 20.0, 0.0) for n, w in enumerate(walls)]
    tw = build_twin(blds, frame=frame, margin_m=300.0)
    p = Planner(tw)
    start = tuple(map(float, tw.frame.to_wgs84(-250.0, -250.0)))
    yard = tuple(map(float, tw.frame.to_wgs84(0.0, 0.0)))
    r = p.plan(RouteRequest(start, yard, depart_s=1_800_000_000.0))
    assert r.alt_amsl_m.max() > 25.0          # over the 20 m blocks + 5 m clearance
    with pytest.raises(PlanError, match="pocket of free air"):
        p.plan(RouteRequest(start, yard, depart_s=1_800_000_000.0, ceiling_agl_m=22.0))


def test_goal_beside_a_tower_joins_the_coarse_search_without_a_fine_fallback():
    """A goal whose coarse search cell touches a tower's protected volume but whose own
    fine cell is free: a short fine link to a free coarse cell, not the whole window at
    2 m (which cost up to 6 s); the route passes the independent validator."""
    from skytwin.planner.validate import RouteValidator
    frame = Frame(24.94, 60.17)
    blds = [Building("tower", box(0, 0, 20, 20), 0.0, 200.0, 0.0)]
    tw = build_twin(blds, frame=frame, margin_m=500.0)
    p = Planner(tw, max_search_voxels=300_000)
    start = tuple(map(float, tw.frame.to_wgs84(-450.0, -450.0)))
    goal = tuple(map(float, tw.frame.to_wgs84(26.5, 10.0)))
    r = p.plan(RouteRequest(start, goal, depart_s=1_800_000_000.0))
    assert r.level > 1 and p.large_searches == 0
    rep = RouteValidator(tw.buildings, tw.clearance_m).check(r.xyz_m, r.trajectory.t_s)
    assert rep.ok, str(rep)
    x, y = tw.frame.to_local(*r.lonlat_deg[-1])
    assert abs(x - 26.5) < 0.02 and abs(y - 10.0) < 0.02
