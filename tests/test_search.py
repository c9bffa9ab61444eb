"""planner.search: A* against the naive Dijkstra, typed errors, workspace reuse, and the
Moving AI 3D benchmark's published optima."""

from __future__ import annotations

import math

import numpy as np
import pytest

from skytwin.airspace.errors import AirspaceError, OutsideTwinError
from skytwin.planner.search import (
    GoalBlockedError,
    NoRouteError,
    OutsideGridError,
    SearchGrid,
    SearchStatus,
    SearchWorkspace,
    StartBlockedError,
    WorkspaceTooSmallError,
    find_path,
    octile_distance,
)
from skytwin.planner.voxel3d import read_map, read_scenarios
from tests.naive.search import dijkstra_cost, path_cost

REL_TOL = 1e-9


def _random_case(rng, density=None, shape=None):
    shape = shape or tuple(int(s) for s in rng.integers(3, 9, size=3))
    density = rng.uniform(0.05, 0.45) if density is None else density
    blocked = (rng.random(shape) < density).astype(np.uint8)
    free = np.argwhere(blocked == 0)
    if len(free) < 2:
        blocked[0, 0, 0] = 0
        blocked[-1, -1, -1] = 0
        free = np.argwhere(blocked == 0)
    i, j = rng.choice(len(free), size=2, replace=len(free) < 2)
    return blocked, tuple(free[i]), tuple(free[j])


def _check_against_oracle(blocked, s, g, rule, **kw):
    want = dijkstra_cost(blocked, s, g, rule, **kw)
    if math.isinf(want):
        with pytest.raises(
            NoRouteError, match="not in the start's connected free region"
        ):
            find_path(blocked, s, g, rule=rule, **kw)
        return None
    p = find_path(blocked, s, g, rule=rule, **kw)
    assert p.status == SearchStatus.FOUND
    assert p.cost == pytest.approx(want, rel=REL_TOL, abs=1e-12)
    assert tuple(p.indices[0]) == s and tuple(p.indices[-1]) == g
    assert path_cost(blocked, p.indices, rule, **kw) == pytest.approx(
        p.cost, rel=REL_TOL
    )
    return p


@pytest.mark.parametrize("rule", ["strict", "free"])
def test_matches_dijkstra_on_random_grids(rule):
    rng = np.random.default_rng(12345 if rule == "strict" else 54321)
    found = 0
    for _ in range(300):
        blocked, s, g = _random_case(rng)
        found += _check_against_oracle(blocked, s, g, rule) is not None
    assert found > 150  # the cases are not all trivially unreachable


def test_rules_differ_where_a_diagonal_cuts_a_corner():
    blocked = np.zeros((2, 2, 1), np.uint8)
    blocked[1, 0, 0] = 1
    assert find_path(blocked, (0, 0, 0), (1, 1, 0), rule="free").cost == pytest.approx(
        math.sqrt(2)
    )
    assert find_path(
        blocked, (0, 0, 0), (1, 1, 0), rule="strict"
    ).cost == pytest.approx(2.0)
    blocked[0, 1, 0] = 1  # both corners blocked: strict cannot pass, free can
    with pytest.raises(NoRouteError):
        find_path(blocked, (0, 0, 0), (1, 1, 0), rule="strict")
    assert find_path(blocked, (0, 0, 0), (1, 1, 0), rule="free").indices.shape == (2, 3)


def test_weighted_costs_match_dijkstra():
    rng = np.random.default_rng(7)
    for k in range(80):
        blocked, s, g = _random_case(rng)
        kw = {
            "cell_size": (2.0, 2.0, 0.5 + k % 3),
            "vertical_factor": [1.0, 3.0, 0.0][k % 3],
        }
        if k % 2:
            kw["voxel_cost"] = rng.uniform(0, 2, size=blocked.shape)
        _check_against_oracle(blocked, s, g, ["strict", "free"][k % 2], **kw)


def test_heuristic_is_the_exact_empty_grid_cost():
    rng = np.random.default_rng(3)
    empty = np.zeros((5, 6, 4), np.uint8)
    for k in range(40):
        a = tuple(int(rng.integers(0, n)) for n in empty.shape)
        b = tuple(int(rng.integers(0, n)) for n in empty.shape)
        cell = (1.0, 1.0, 1.0) if k % 2 else (1.5, 2.5, 0.7)
        vf = 1.0 if k % 3 else 4.0
        want = dijkstra_cost(empty, a, b, "strict", cell, vf)
        assert octile_distance(a, b, cell, vf) == pytest.approx(
            want, rel=1e-12, abs=1e-12
        )
    assert octile_distance((0, 0, 0), (4, 2, 1)) == pytest.approx(
        math.sqrt(3) + math.sqrt(2) + 2
    )


def test_start_equals_goal():
    p = find_path(np.zeros((3, 3, 3), np.uint8), (1, 1, 1), (1, 1, 1))
    assert p.cost == 0.0 and p.indices.tolist() == [[1, 1, 1]]


def test_workspace_reuse_gives_the_same_results_as_fresh():
    rng = np.random.default_rng(99)
    ws = SearchWorkspace((8, 8, 8), heap_capacity=1)  # also exercises heap growth
    for _ in range(200):
        blocked, s, g = _random_case(rng)
        rule = ["strict", "free"][int(rng.integers(2))]
        try:
            fresh = find_path(blocked, s, g, rule=rule)
        except NoRouteError:
            with pytest.raises(NoRouteError):
                find_path(blocked, s, g, rule=rule, workspace=ws)
            continue
        reused = find_path(blocked, s, g, rule=rule, workspace=ws)
        assert reused.cost == fresh.cost
        assert reused.expansions == fresh.expansions
        np.testing.assert_array_equal(reused.indices, fresh.indices)


def test_budget_exhausted_returns_a_status_and_leaves_the_workspace_usable():
    blocked = np.zeros((30, 30, 3), np.uint8)
    blocked[15, :29, :] = 1
    ws = SearchWorkspace(blocked.shape)
    p = find_path(blocked, (0, 0, 1), (29, 0, 1), workspace=ws, max_expansions=5)
    assert p.status == SearchStatus.BUDGET_EXHAUSTED
    assert p.expansions == 5 and math.isinf(p.cost) and p.indices.shape == (0, 3)
    full = find_path(blocked, (0, 0, 1), (29, 0, 1), workspace=ws)
    assert full.status == SearchStatus.FOUND
    assert full.cost == pytest.approx(dijkstra_cost(blocked, (0, 0, 1), (29, 0, 1)))


def test_window_restricts_the_search_and_keeps_full_grid_indices():
    rng = np.random.default_rng(5)
    for _ in range(60):
        blocked, s, g = _random_case(rng, shape=(9, 8, 7))
        lo = tuple(min(s[i], g[i]) - int(rng.integers(0, 2)) for i in range(3))
        lo = tuple(max(v, 0) for v in lo)
        hi = tuple(
            min(max(s[i], g[i]) + 1 + int(rng.integers(0, 2)), blocked.shape[i])
            for i in range(3)
        )
        outside = np.ones_like(blocked)
        outside[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]] = 0
        masked = blocked | outside
        want = dijkstra_cost(masked, s, g, "strict")
        grid = SearchGrid(blocked)
        if math.isinf(want):
            with pytest.raises(NoRouteError, match="inside the window"):
                find_path(grid, s, g, window=(lo, hi))
            continue
        p = find_path(grid, s, g, window=(lo, hi))
        assert p.cost == pytest.approx(want, rel=REL_TOL)
        assert tuple(p.indices[0]) == s and tuple(p.indices[-1]) == g
        assert path_cost(masked, p.indices, "strict") == pytest.approx(p.cost)


def test_search_grid_and_array_give_the_same_path():
    rng = np.random.default_rng(11)
    blocked, s, g = _random_case(rng, density=0.2, shape=(8, 8, 8))
    vc = rng.uniform(0, 1, size=blocked.shape)
    a = find_path(blocked, s, g, voxel_cost=vc)
    b = find_path(SearchGrid(blocked, vc), s, g)
    assert a.cost == b.cost
    np.testing.assert_array_equal(a.indices, b.indices)


# ------------------------------------------------------------------------- errors


def test_outside_grid_error():
    blocked = np.zeros((4, 5, 6), np.uint8)
    with pytest.raises(
        OutsideGridError,
        match=r"start \(4, 0, 0\) is outside the grid of "
        r"shape \(4, 5, 6\)",
    ) as e:
        find_path(blocked, (4, 0, 0), (0, 0, 0))
    assert isinstance(e.value, OutsideTwinError) and isinstance(e.value, ValueError)
    with pytest.raises(OutsideGridError, match=r"goal \(0, -1, 0\) is outside"):
        find_path(blocked, (0, 0, 0), (0, -1, 0))
    with pytest.raises(
        OutsideGridError, match=r"goal \(3, 4, 5\) is outside the window"
    ):
        find_path(blocked, (0, 0, 0), (3, 4, 5), window=((0, 0, 0), (2, 2, 2)))
    with pytest.raises(OutsideGridError, match="window .* empty or outside the grid"):
        find_path(blocked, (0, 0, 0), (1, 1, 1), window=((0, 0, 0), (2, 2, 9)))


def test_blocked_endpoint_errors():
    blocked = np.zeros((3, 3, 3), np.uint8)
    blocked[0, 0, 0] = blocked[2, 2, 2] = 1
    with pytest.raises(
        StartBlockedError, match=r"start \(0, 0, 0\) is a blocked voxel"
    ) as e:
        find_path(blocked, (0, 0, 0), (1, 1, 1))
    assert isinstance(e.value, AirspaceError) and isinstance(e.value, ValueError)
    with pytest.raises(
        GoalBlockedError, match=r"goal \(2, 2, 2\) is a blocked voxel"
    ) as e:
        find_path(blocked, (1, 1, 1), (2, 2, 2))
    assert isinstance(e.value, AirspaceError) and isinstance(e.value, ValueError)


def test_no_route_error_says_why():
    blocked = np.zeros((5, 5, 5), np.uint8)
    blocked[2, :, :] = 1
    with pytest.raises(NoRouteError) as e:
        find_path(blocked, (0, 0, 0), (4, 4, 4))
    msg = str(e.value)
    assert "no route from (0, 0, 0) to (4, 4, 4) under the 'strict' rule" in msg
    assert (
        "50 voxels reached, all explored" in msg
    )  # the 2 x 5 x 5 slab behind the wall
    assert isinstance(e.value, AirspaceError) and e.value.reason == msg


def test_bad_arguments():
    blocked = np.zeros((3, 3, 3), np.uint8)
    with pytest.raises(ValueError, match="rule must be one of"):
        find_path(blocked, (0, 0, 0), (1, 1, 1), rule="diagonal")
    with pytest.raises(ValueError, match="start must be three integers"):
        find_path(blocked, (0, 0), (1, 1, 1))
    with pytest.raises(ValueError, match="non-empty 3D array"):
        find_path(np.zeros((3, 3), np.uint8), (0, 0, 0), (1, 1, 1))
    with pytest.raises(ValueError, match="cell_size must be three positive"):
        find_path(blocked, (0, 0, 0), (1, 1, 1), cell_size=(1, 0, 1))
    with pytest.raises(ValueError, match="vertical_factor must be finite"):
        find_path(blocked, (0, 0, 0), (1, 1, 1), vertical_factor=-1)
    with pytest.raises(ValueError, match="voxel_cost must be finite and >= 0"):
        find_path(blocked, (0, 0, 0), (1, 1, 1), voxel_cost=-np.ones((3, 3, 3)))
    with pytest.raises(WorkspaceTooSmallError, match="workspace holds 27 voxels"):
        find_path(blocked, (0, 0, 0), (1, 1, 1), workspace=SearchWorkspace((1, 1, 1)))


# ---------------------------------------------------------- Moving AI 3D benchmark

# Every scenario of Simple and Complex; 1,000 evenly spread scenarios of DA1 keep this
# file fast (all 10,000 of DA1 take minutes; benchmarks/bench_voxel3d.py checks them).
MOVING_AI = [("Simple", None), ("Complex", None), ("DA1", 1000)]


@pytest.mark.parametrize("name,limit", MOVING_AI)
def test_moving_ai_optimal_lengths(voxel3d_data, name, limit):
    blocked = read_map(voxel3d_data / f"{name}.3dmap")
    scen = read_scenarios(voxel3d_data / f"{name}.3dmap.3dscen").spread(limit)
    assert len(scen) >= 1000
    grid = SearchGrid(blocked)
    ws = SearchWorkspace(blocked.shape)
    checked_paths = 0
    for k, (s, g, length) in enumerate(
        zip(scen.start, scen.goal, scen.length, strict=True)
    ):
        p = find_path(grid, s, g, workspace=ws)
        assert abs(p.cost - length) <= 1e-6 * length, (name, k, p.cost, length)
        if k % 250 == 0:  # the path itself is legal and costs what is reported
            idx = p.indices
            d = np.diff(idx, axis=0)
            assert (np.abs(d).max(axis=1) == 1).all()
            lo = np.minimum(idx[:-1], idx[1:])
            for corner in np.ndindex(2, 2, 2):
                c = np.where(np.array(corner) == 1, np.maximum(idx[:-1], idx[1:]), lo)
                assert not blocked[c[:, 0], c[:, 1], c[:, 2]].any()
            assert np.linalg.norm(d, axis=1).sum() == pytest.approx(p.cost, rel=1e-12)
            checked_paths += 1
    assert checked_paths >= 4


def test_threads_with_their_own_workspaces_agree_with_serial():
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(21)
    blocked = (rng.random((20, 20, 20)) < 0.25).astype(np.uint8)
    free = np.argwhere(blocked == 0)
    pairs = [
        (tuple(free[i]), tuple(free[j])) for i, j in rng.choice(len(free), size=(40, 2))
    ]
    grid = SearchGrid(blocked)

    def run(chunk):
        ws = SearchWorkspace(blocked.shape)
        out = []
        for s, g in chunk:
            try:
                out.append(find_path(grid, s, g, workspace=ws).cost)
            except NoRouteError:
                out.append(math.inf)
        return out

    serial = run(pairs)
    with ThreadPoolExecutor(2) as ex:
        halves = list(ex.map(run, [pairs[::2], pairs[1::2]]))
    assert halves[0] == serial[::2] and halves[1] == serial[1::2]


def test_window_on_a_plain_array_matches_window_on_a_search_grid():
    rng = np.random.default_rng(17)
    blocked, s, g = _random_case(rng, density=0.15, shape=(12, 12, 12))
    vc = rng.uniform(0, 1, size=blocked.shape)
    win = ((0, 0, 0), (12, 12, 12))
    lo = tuple(min(s[i], g[i]) for i in range(3))
    hi = tuple(max(s[i], g[i]) + 1 for i in range(3))
    for w in (win, (lo, hi)):
        try:
            a = find_path(blocked, s, g, voxel_cost=vc, window=w)
        except NoRouteError:
            with pytest.raises(NoRouteError):
                find_path(SearchGrid(blocked, vc), s, g, window=w)
            continue
        b = find_path(SearchGrid(blocked, vc), s, g, window=w)
        assert a.cost == b.cost
        np.testing.assert_array_equal(a.indices, b.indices)
    with pytest.raises(ValueError, match="voxel_cost shape"):
        find_path(blocked, s, g, voxel_cost=vc[:-1], window=win)


def test_huge_voxel_costs_and_free_vertical_moves_stay_optimal():
    # Extreme cost ranges widen the open list's buckets; the order must stay exact.
    rng = np.random.default_rng(23)
    for k in range(30):
        blocked, s, g = _random_case(rng, density=0.2)
        vc = rng.uniform(0, 1e7, size=blocked.shape) * (rng.random(blocked.shape) < 0.3)
        kw = {"voxel_cost": vc, "vertical_factor": [0.0, 1.0, 50.0][k % 3]}
        _check_against_oracle(blocked, s, g, "strict", **kw)


# ----------------------------------------------------------- 2D column bound, padded


def _walled_case(rng, shape):
    """Random voxels plus whole blocked columns (walls from bottom to top), as in the
    city twin where buildings of unknown height reach the ceiling."""
    blocked = (rng.random(shape) < rng.uniform(0.0, 0.3)).astype(np.uint8)
    cols = rng.random(shape[:2]) < rng.uniform(0.1, 0.5)
    blocked[cols] = 1
    free = np.argwhere(blocked == 0)
    if len(free) < 2:
        return None
    i, j = rng.choice(len(free), size=2, replace=False)
    return blocked, tuple(free[i]), tuple(free[j])


def test_column_bound_keeps_the_optimal_cost():
    """column_bound=True (max of the octile heuristic and the exact 2D cost over open
    columns) finds paths of the oracle's cost, with any cell size and climb factor."""
    rng = np.random.default_rng(2024)
    found = fewer = 0
    for n in range(300):
        case = _walled_case(rng, tuple(int(s) for s in rng.integers(3, 12, size=3)))
        if case is None:
            continue
        blocked, s, g = case
        kw = {}
        if n % 3 == 1:
            kw = {"cell_size": (4.0, 4.0, 2.0), "vertical_factor": 1.5}
        want = dijkstra_cost(blocked, s, g, "strict", **kw)
        if math.isinf(want):
            with pytest.raises(NoRouteError):
                find_path(blocked, s, g, column_bound=True, **kw)
            continue
        p = find_path(blocked, s, g, column_bound=True, **kw)
        assert p.cost == pytest.approx(want, rel=REL_TOL, abs=1e-12)
        assert path_cost(blocked, p.indices, "strict", **kw) == pytest.approx(p.cost,
                                                                               rel=REL_TOL)
        found += 1
        fewer += p.expansions <= find_path(blocked, s, g, **kw).expansions
    assert found > 100
    assert fewer > 0.9 * found


def test_column_bound_cuts_expansions_behind_a_wall():
    """A wall of whole columns between start and goal with a gap at one end: the 2D
    bound sees the detour, the octile heuristic alone floods the near side."""
    blocked = np.zeros((40, 60, 12), np.uint8)
    blocked[20, 0:55, :] = 1
    s, g = (5, 5, 0), (35, 5, 0)
    plain = find_path(blocked, s, g)
    bound = find_path(blocked, s, g, column_bound=True)
    assert bound.cost == pytest.approx(plain.cost, rel=REL_TOL)
    assert bound.expansions < plain.expansions / 5


def _naive_column_bound(open2d, goal, cx, cy):
    """Plain Dijkstra over open columns from ``goal``: 8-connected, a diagonal only
    when both corner columns are open."""
    import heapq
    nx, ny = open2d.shape
    dist = np.full((nx, ny), np.inf)
    dist[goal] = 0.0
    heap = [(0.0, goal)]
    while heap:
        d, (x, y) = heapq.heappop(heap)
        if d > dist[x, y]:
            continue
        for ax in (-1, 0, 1):
            for ay in (-1, 0, 1):
                u, v = x + ax, y + ay
                if (ax, ay) == (0, 0) or not (0 <= u < nx and 0 <= v < ny):
                    continue
                if not open2d[u, v] or (ax and ay and not (open2d[u, y] and open2d[x, v])):
                    continue
                nd = d + math.hypot(ax * cx, ay * cy)
                if nd < dist[u, v]:
                    dist[u, v] = nd
                    heapq.heappush(heap, (nd, (u, v)))
    return dist


def test_unit_column_bound_equals_a_plain_dijkstra():
    from skytwin.planner.search import _column_bound_unit, _open_columns
    rng = np.random.default_rng(5)
    for _ in range(20):
        case = _walled_case(rng, (int(rng.integers(3, 30)), int(rng.integers(3, 30)), 4))
        if case is None:
            continue
        g = SearchGrid(case[0])
        nxp, nyp, nzp = g.padded.shape
        open_col = _open_columns(g.flat, nxp, nyp, nzp, np.empty(nxp * nyp, np.uint8))
        open2d = (g.padded == 0).any(axis=2)
        np.testing.assert_array_equal(open_col, open2d.reshape(-1))
        goal = int(np.flatnonzero(open_col)[0])
        cx, cy = float(rng.uniform(1, 5)), float(rng.uniform(1, 5))
        want = _naive_column_bound(open2d, divmod(goal, nyp), cx, cy).reshape(-1)
        got = _column_bound_unit(open_col, nxp, nyp, goal, cx, cy, np.empty(nxp * nyp))
        np.testing.assert_allclose(got, want, rtol=1e-12)


def test_column_bound_sees_no_gap_between_corner_touching_walls():
    """Two wall segments touching at a corner: the strict rule cannot pass between
    them, and neither does the 2D bound (so A* does not flood toward the corner)."""
    blocked = np.zeros((30, 30, 6), np.uint8)
    for i in range(30):          # a staircase wall of whole columns, corners touching
        blocked[i, i, :] = 1
    s, g = (20, 5, 0), (5, 20, 0)
    with pytest.raises(NoRouteError, match="columns blocked from bottom to top"):
        find_path(blocked, s, g, column_bound=True)
    with pytest.raises(NoRouteError):
        find_path(blocked, s, g)


def test_search_grid_from_padded_uses_the_array_and_checks_its_border():
    rng = np.random.default_rng(8)
    blocked, s, g = _random_case(rng, density=0.2, shape=(7, 9, 5))
    padded = np.ones((9, 11, 7), np.uint8)
    padded[1:-1, 1:-1, 1:-1] = blocked
    grid = SearchGrid.from_padded(padded)
    assert grid.shape == blocked.shape and grid.padded is padded
    try:
        want = find_path(blocked, s, g)
    except NoRouteError:
        want = None
    if want is not None:
        got = find_path(grid, s, g)
        assert got.cost == want.cost
        np.testing.assert_array_equal(got.indices, want.indices)
    padded[0, 3, 3] = 0
    with pytest.raises(ValueError, match="border"):
        SearchGrid.from_padded(padded)
    with pytest.raises(ValueError, match="uint8"):
        SearchGrid.from_padded(np.ones((4, 4, 4), np.int32))
