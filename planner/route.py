"""Plan a route through the twin: the pipeline from two places and a time to a 4D route.

Steps
-----
1. **Validate** the request: both ends inside the twin, not inside a building footprint,
   not inside an active no-fly volume, the flight's time window sane.
2. **Choose a search level.** The twin is 2.5D (per column, the layer from which the
   air is free of buildings plus clearance, ``floor_k``), so a search grid at any
   coarsening factor ``f`` (cells of ``f`` voxels a side) is computed straight from the
   2D fields: a coarse cell is blocked when any fine voxel inside it is (max-pooling, so
   free coarse cells are free at the fine level too). The search window is the box
   around start and goal plus a margin; the finest level whose window holds at most
   ``max_search_voxels`` cells (default 2 M) is used. When a coarse start or goal cell
   is blocked, or the coarse search finds no route, the next finer level is tried (up to
   ``max_fallback_voxels``, default 48 M cells); the error says which level failed. This bounds memory and time for
   10 km routes (a 10 km window at f=8 is 625 x 625 x 10 cells) while routes of a few
   hundred metres search the full 2 m grid. Measured on Helsinki and Den Haag (400
   random pairs each): a 2 M budget instead of 6 M cuts p99 latency about 3x (81 -> 25
   ms, 25 -> 12 ms) for routes 0.6 % longer on average.
   Two shortcuts keep refusals and points near buildings cheap (issue 14 profile: they
   took 10-15 s and 0.5-6 s under load). Before any search, a start and goal in
   different pockets of free air (:mod:`planner.reach`, labels cached per altitude band)
   are refused at once: no window, level or zone can join them. And when only the
   start's or goal's own coarse cell is blocked (a point a few metres from a tall
   building), a short fine search in a box of :data:`CONNECT_CELLS` coarse cells around
   it joins it to the nearest free coarse cell its air reaches, and the coarse search
   runs from there, instead of searching the whole window at the next finer level.
3. **Altitude limits and zones** are added to that grid: cells below the cruise floor
   (``min_agl_m`` above ground) or above the ceiling (``ceiling_agl_m`` above ground)
   are blocked, and so is every cell touched by a no-fly volume active at any time
   during the flight.
4. **Search** (:func:`planner.search.find_path`, numba A*, strict no-corner-cutting
   rule: a path through free cells stays inside free cells).
5. **Take-off and landing** are vertical: from the ground at the exact start point up
   to the first cruise cell's height, and down at the goal. They need only be outside
   every building footprint and active zone (the clearance applies to the airborne
   part: a drone may climb beside a wall it will then keep clear of).
6. **Smooth** the airborne part to few straight segments, each checked against the
   exact building geometry with the clearance (:class:`planner.exact.ExactChecker`),
   the active zones, the ground floor and the ceiling; quantize to 1 cm and re-check.
   Candidate segments are screened by the checker's numba test (conservative, ~10 us
   instead of ~0.1 ms of GEOS calls each); every segment of the result is then checked
   by the GEOS test, and smoothing is redone with the GEOS test alone if one fails.
7. **Time** it (:mod:`planner.timing`) and check zones again with the real times.

A route is only returned after the final polyline passed every exact check.

Ground risk (issue 13)
----------------------
With a :class:`~airspace.risk.RiskLayer` the planner reports every route's
``exposure`` (people overflown, worst SORA band crossed, derived zones near the route,
warnings), also with ``risk_weight = 0``. ``risk_weight = w > 0`` makes the cost of a
move ``length x (1 + w x r)`` with ``r`` the normalised risk of the column it enters
(max-pooled over a coarse search cell): every move costs at least its length, so the
obstacle-free length stays an admissible, consistent heuristic and the search stays
exact. ``max_band`` blocks every column whose band is above it. Smoothing then only
replaces a piece of the voxel path by a straight segment that costs no more,
weighted the same way, and stays within ``max_band`` (with ``w = 0`` and no cap it is
unchanged). The people overflown are counted along the final track in the period
(day / night) of the departure's local solar time.
"""

from __future__ import annotations

import collections
import math
import threading
import time
import weakref
from dataclasses import dataclass, field

import numpy as np
from numba import njit
from scipy import ndimage
from shapely.geometry import Point

from skytwin.airspace._jit import JIT
from skytwin.airspace.errors import AirspaceError, OutsideTwinError
from skytwin.airspace.zones import ground_range_from_grid, segment_intersects, zone_voxels
from skytwin.planner import search
from skytwin.planner.exact import ExactChecker
from skytwin.planner.smooth import quantize, shortcut_quantized
from skytwin.planner.timing import SpeedProfile, to_trajectory
from skytwin.planner.trajectory import Trajectory

__all__ = ["LARGE_SEARCH_SLOTS", "PlanError", "Planner", "PlannerBusyError", "Route",
           "RouteRequest"]


class PlanError(AirspaceError, ValueError):
    """A route cannot be planned; ``reason`` says why and ``blocking`` names the culprit."""

    def __init__(self, reason: str, blocking: tuple[str, str] | None = None,
                 code: str = "no_route"):
        self.reason = reason
        self.blocking = blocking
        self.code = code
        super().__init__(reason)


class PlannerBusyError(PlanError):
    """Every slot for a large search is taken for longer than the planner may wait
    (the server maps it to RESOURCE_EXHAUSTED: retry later)."""

    def __init__(self, reason: str):
        super().__init__(reason, code="busy")


#: Searches larger than a planner's ``keep_workspace_voxels`` take one of these slots
#: for the time of the search (shared by every planner of the process; see
#: :class:`Planner`). One slot: at most one ~770 MB fallback workspace exists at a time.
LARGE_SEARCH_SLOTS = threading.BoundedSemaphore(1)


class StartBlocked(PlanError):
    """The start point is unusable (inside a building or an active zone)."""


class GoalBlocked(PlanError):
    """The goal point is unusable (inside a building or an active zone)."""


@dataclass(frozen=True)
class RouteRequest:
    """What an operator asks for.

    Attributes
    ----------
    start_lonlat, goal_lonlat : (lon_deg, lat_deg)
    depart_s : float
        Departure time [s since the Unix epoch].
    ceiling_agl_m : float
        Highest altitude above ground (default 120 m, see fixtures/rules).
    min_agl_m : float
        Lowest cruise altitude above ground (take-off and landing excepted).
    speeds : SpeedProfile
    flight_id : str
    start_alt_amsl_m, goal_alt_amsl_m : float or None
        Height of the take-off / landing pad [m AMSL] (e.g. a rooftop pad); default
        the ground under the point.
    climb_factor : float
        Search cost multiplier on the vertical part of a move (>= 1: climbing and
        descending cost more than flying level, e.g. for energy).
    proximity_cost_m : float
        Extra search cost [m] for entering a cell next to a blocked one (keeps routes
        away from buildings and zones when a detour is cheap). Both only shape the voxel
        search; smoothing then shortens the path under the same hard clearance.
    """

    start_lonlat: tuple[float, float]
    goal_lonlat: tuple[float, float]
    depart_s: float = 0.0
    ceiling_agl_m: float = 120.0
    min_agl_m: float = 10.0
    speeds: SpeedProfile = field(default_factory=SpeedProfile)
    flight_id: str = "route"
    start_alt_amsl_m: float | None = None
    goal_alt_amsl_m: float | None = None
    climb_factor: float = 1.0
    proximity_cost_m: float = 0.0
    risk_weight: float = 0.0
    max_band: int | None = None

    def __post_init__(self):
        if not (math.isfinite(self.risk_weight) and 0.0 <= self.risk_weight <= 1000.0):
            raise PlanError(f"risk_weight must be in [0, 1000], got {self.risk_weight}",
                            code="invalid")
        if self.max_band is not None and self.max_band not in range(1, 7):
            raise PlanError(f"max_band must be a SORA population band 1-6, got "
                            f"{self.max_band}", code="invalid")
        if not (math.isfinite(self.climb_factor) and self.climb_factor >= 1.0):
            raise PlanError(f"climb_factor must be >= 1 (1 = no climb penalty), got "
                            f"{self.climb_factor}", code="invalid")
        if not (math.isfinite(self.proximity_cost_m) and self.proximity_cost_m >= 0.0):
            raise PlanError(f"proximity_cost_m must be >= 0, got {self.proximity_cost_m}",
                            code="invalid")


@dataclass
class Route:
    """A planned, checked route (local metres, WGS84 and a 4D trajectory)."""

    xyz_m: np.ndarray            # (n, 3) local, z [m AMSL], quantized to 1 cm
    lonlat_deg: np.ndarray       # (n, 2)
    alt_amsl_m: np.ndarray       # (n,)
    alt_agl_m: np.ndarray        # (n,)
    trajectory: Trajectory
    clearance_m: float
    voxel_length_m: float        # length of the raw voxel path (incl. take-off/landing)
    straight_m: float            # 3D straight line start-ground -> goal-ground
    level: int                   # coarsening factor used by the search
    expansions: int
    search_ms: float
    total_ms: float
    zones_considered: list[str] = field(default_factory=list)
    exposure: dict | None = None
    footprints_checked_xyz: np.ndarray | None = None
    """Waypoints on which the independent route validator's building tests (take-off,
    landing, clearance) passed, set by the service where the plan was made (a planning
    process when there are some); a booking of exactly these waypoints re-checks only
    what can change (times, speeds, zones, other flights). ``None``: not checked."""

    @property
    def length_m(self) -> float:
        return float(np.linalg.norm(np.diff(self.xyz_m, axis=0), axis=1).sum())

    @property
    def duration_s(self) -> float:
        return self.trajectory.duration_s

    def to_dict(self) -> dict:
        """Plain JSON-ready form (the CLI's ``--json``)."""
        t0 = float(self.trajectory.t_s[0])
        return {
            "flight_id": self.trajectory.flight_id,
            "waypoints": [
                {"lon": round(float(lo), 9), "lat": round(float(la), 9),
                 "alt_amsl_m": round(float(a), 2), "alt_agl_m": round(float(g), 2),
                 "t_s": round(float(t - t0), 3), "time_unix_s": round(float(t), 3)}
                for (lo, la), a, g, t in zip(self.lonlat_deg, self.alt_amsl_m,
                                             self.alt_agl_m, self.trajectory.t_s,
                                             strict=True)],
            "length_m": round(self.length_m, 2),
            "duration_s": round(self.duration_s, 2),
            "clearance_m": self.clearance_m,
            "voxel_length_m": round(self.voxel_length_m, 2),
            "straight_m": round(self.straight_m, 2),
            "search_level": self.level,
            "expansions": self.expansions,
            "search_ms": round(self.search_ms, 2),
            "total_ms": round(self.total_ms, 2),
            "depart_unix_s": t0,
            **({"exposure": self.exposure} if self.exposure is not None else {}),
        }


class Planner:
    """Plans routes on one twin, with an optional zone layer.

    One planner per thread (it owns the search workspace, which is reused across
    queries); the twin and its exact checker are read-only and shared.

    Memory. The search workspace (16 B per padded voxel plus the open list) is kept
    between calls only up to ``keep_workspace_voxels`` (default 4.5 M voxels, about
    72 MB: any search within the 2 M-cell budget fits). A larger search (the finer
    fallback levels, up to ``max_fallback_voxels``: about 770 MB) first takes a slot of
    ``large_search`` (default :data:`LARGE_SEARCH_SLOTS`, shared by every planner of
    the process; the server uses two), waiting at most ``large_search_wait_s`` (then
    :class:`PlannerBusyError`), uses a workspace of its own and frees it before
    returning the slot. So memory per process is bounded by ``threads x 72 MB`` plus
    ``slots x 770 MB``, instead of every thread keeping its largest workspace forever
    (measured before: ~470 MB resident per planning thread after one low-ceiling
    request). An open list grown past ``1 << 20`` entries is shrunk after the call.
    """

    def __init__(self, twin, zones=None, *, max_search_voxels: int = 2_000_000,
                 max_fallback_voxels: int = 48_000_000,
                 checker: ExactChecker | None = None,
                 keep_workspace_voxels: int = 4_500_000, large_search=None,
                 large_search_wait_s: float = 10.0, risk=None, derived=None,
                 near_m: float = 100.0):
        self.twin = twin
        self.zones = zones
        self.risk = risk
        self.near_m = float(near_m)
        from skytwin.airspace.zones import LocalZone
        self._derived = [(d, LocalZone(d.zone, twin.frame)) for d in (derived or [])]
        self.max_search_voxels = int(max_search_voxels)
        self.max_fallback_voxels = int(max_fallback_voxels)
        self.checker = checker or ExactChecker.for_twin(twin)
        self._ground_range = ground_range_from_grid(twin.grid, twin.ground_m)
        self._workspace = None
        self.keep_workspace_voxels = int(keep_workspace_voxels)
        self.large_search = LARGE_SEARCH_SLOTS if large_search is None else large_search
        self.large_search_wait_s = float(large_search_wait_s)
        self.large_searches = 0       # searches that used a workspace of their own
        self._limits_cache = _shared_cache(twin)
        self._pads = collections.deque(maxlen=4)       # weak refs: recent window grids

    # ------------------------------------------------------------------ public API
    def plan(self, req: RouteRequest) -> Route:
        t_all = time.perf_counter()
        tw = self.twin
        g = tw.grid
        if not (0.0 < req.min_agl_m < req.ceiling_agl_m):
            raise PlanError(f"altitude limits must satisfy 0 < min_agl_m < ceiling_agl_m, "
                            f"got {req.min_agl_m} and {req.ceiling_agl_m}", code="invalid")
        if self.risk is None and (req.risk_weight > 0 or req.max_band is not None):
            raise PlanError("risk_weight and max_band need a ground-risk layer (the "
                            "planner has none)", code="invalid")
        s_xy = self._local(req.start_lonlat, "start")
        e_xy = self._local(req.goal_lonlat, "goal")
        s_col = g.column_of(*s_xy)
        e_col = g.column_of(*e_xy)
        gs = self._pad_height(s_col, req.start_alt_amsl_m, "start", StartBlocked)
        ge = self._pad_height(e_col, req.goal_alt_amsl_m, "goal", GoalBlocked)
        self._check_endpoint(s_xy, gs, "start", StartBlocked)
        self._check_endpoint(e_xy, ge, "goal", GoalBlocked)

        period = None
        if self.risk is not None:
            from skytwin.airspace.risk import period_at
            period = period_at(req.depart_s, req.start_lonlat[0])
            if req.max_band is not None:
                bands = self.risk.bands(period)
                for xy, name, exc in ((s_xy, "start", StartBlocked),
                                      (e_xy, "goal", GoalBlocked)):
                    i, j = self.risk.cell_of(*xy)
                    if bands[i, j] > req.max_band:
                        raise exc(f"{name} lies in SORA population band {int(bands[i, j])}"
                                  f", above max_band {req.max_band}",
                                  code=f"{name}_band")
        self._period = period
        straight = math.dist(s_xy, e_xy)
        est_s = self._duration_bound_s(straight, req)
        t0, t1 = req.depart_s, req.depart_s + est_s
        active = self._active_zones(t0, t1)

        self._check_reachable(s_col, e_col, req)
        level0, _ = self._choose_window(s_col, e_col, straight)
        level = level0
        if req.risk_weight > 0 and self.risk is not None:
            # risk-weighted searches start one level coarser (8x fewer cells): the
            # risk field is ~50 m cells, and a dear detour makes A* close far more of
            # the window; a blocked start or goal cell falls back finer as usual
            level = level0 * RISK_LEVEL_FACTOR
        while True:
            level, win = self._choose_window(s_col, e_col, straight, level)
            try:
                wgrid, vp, search_ms = self._search_level(
                    win, level, req, active, (s_xy, s_col, gs), (e_xy, e_col, ge))
                cells = np.asarray(vp.indices)
                centres = np.column_stack([
                    wgrid.x0_m + (cells[:, 0] + 0.5) * wgrid.dx_m,
                    wgrid.y0_m + (cells[:, 1] + 0.5) * wgrid.dx_m,
                    wgrid.z0_m + (cells[:, 2] + 0.5) * wgrid.dz_m])
                expansions = int(vp.expansions)
                break
            except (StartBlocked, GoalBlocked, search.NoRouteError) as exc:
                blocked_end = level > 1 and getattr(exc, "code", "").endswith("_blocked")
                if blocked_end:
                    # join the point to the nearest free coarse cell by a short fine
                    # search instead of searching the whole window finer
                    # (a start or goal blocked in its fine cell is the finest level's
                    # answer too: it propagates)
                    try:
                        got = self._search_connected(win, level, req, active,
                                                     (s_xy, s_col, gs), (e_xy, e_col, ge))
                    except search.NoRouteError:
                        got = None
                    if got is not None:
                        centres, expansions, search_ms = got
                        break
                # a coarse cell may be blocked where the fine grid is free: retry finer
                # (up to 8x the voxel budget), unless the reason is a zone or a building
                retry = (blocked_end
                         or isinstance(exc, search.NoRouteError) and level > 1)
                if retry and self._window_voxels(win, level // 2) <= self.max_fallback_voxels:
                    level //= 2
                    continue
                if isinstance(exc, search.NoRouteError):
                    raise self._explain_no_route(win, level, req, active,
                                                 (s_xy, s_col, gs), (e_xy, e_col, ge),
                                                 exc) from exc
                raise

        # take-off and landing points on the 1 cm lattice, then the airborne part: from
        # above the start pad to above the goal pad
        ground_s = self._pad_point(s_xy, gs, "start", StartBlocked)
        ground_e = self._pad_point(e_xy, ge, "goal", GoalBlocked)
        air = np.vstack([[ground_s[0], ground_s[1], centres[0, 2]], centres[1:-1],
                         [ground_e[0], ground_e[1], centres[-1, 2]]])
        voxel_poly = np.vstack([[s_xy[0], s_xy[1], gs], air, [e_xy[0], e_xy[1], ge]])
        voxel_len = float(np.linalg.norm(np.diff(voxel_poly, axis=0), axis=1).sum())

        def is_clear_fast(p0, p1):
            return self._segment_ok(p0, p1, req, active, fast=True)

        def is_clear(p0, p1):
            return self._segment_ok(p0, p1, req, active)

        accept = None
        if period is not None and (req.risk_weight > 0 or req.max_band is not None):
            accept = self._risk_accept(air, req, period)
        # candidates are screened by the checker's numba test; every segment kept is
        # then checked again by the exact (GEOS) test, and if one fails (the screen
        # is conservative, so this is not expected) smoothing runs again with the
        # exact test alone
        smooth_air = shortcut_quantized(air, is_clear_fast, accept=accept)
        if smooth_air is not None and any(
                self.checker.segment_violation(smooth_air[s], smooth_air[s + 1]) is not None
                for s in range(len(smooth_air) - 1)):
            smooth_air = shortcut_quantized(air, is_clear, accept=accept)
        if smooth_air is None:
            raise PlanError("internal check failed: the voxel path does not pass the exact "
                            "clearance check (the twin may be stale); route refused",
                            code="check_failed")
        xyz = np.vstack([ground_s, smooth_air, ground_e])
        xyz = _drop_repeats(xyz)
        traj = to_trajectory(req.flight_id, xyz, req.depart_s, req.speeds)
        # zones again, with the real flight times
        if traj.t_end_s > t1:
            ids = {z.id for z in active}
            extra = [z for z in self._active_zones(t0, traj.t_end_s) if z.id not in ids]
            if extra:
                active = active + extra
                for s in range(len(xyz) - 1):
                    if not self._segment_ok(xyz[s], xyz[s + 1], req, extra):
                        raise PlanError("the route would cross no-fly volume(s) "
                                        f"{', '.join(z.id for z in extra)} that become "
                                        "active before it lands; try another departure",
                                        blocking=("zone", extra[0].id))
        lon, lat = tw.frame.to_wgs84(xyz[:, 0], xyz[:, 1])
        agl = xyz[:, 2] - self._ground_along(xyz)
        return Route(
            xyz_m=xyz, lonlat_deg=np.column_stack([lon, lat]), alt_amsl_m=xyz[:, 2].copy(),
            alt_agl_m=np.round(agl, 2), trajectory=traj, clearance_m=tw.clearance_m,
            voxel_length_m=voxel_len,
            straight_m=float(math.dist((s_xy[0], s_xy[1], gs), (e_xy[0], e_xy[1], ge))),
            level=level, expansions=expansions, search_ms=search_ms,
            total_ms=1e3 * (time.perf_counter() - t_all),
            zones_considered=[z.id for z in active],
            exposure=self._exposure(xyz, req, period))

    def prepare(self, min_agl_m: float, ceiling_agl_m: float) -> None:
        """Build the shared tables of one altitude band now (the pyramid of every
        level up to the coarsest a route in this twin can need, and the reachability
        labels), e.g. before forking planning processes that then share them."""
        g = self.twin.grid
        f = 1
        while True:
            self._pyramid(min_agl_m, ceiling_agl_m, f)
            if f >= max(g.nx, g.ny) or (g.nx / f) * (g.ny / f) * (g.nz / f) \
                    <= self.max_search_voxels:
                break
            f *= 2
        self._reach_labels(min_agl_m, ceiling_agl_m)

    def _reach_labels(self, min_agl_m, ceiling_agl_m):
        from skytwin.planner.reach import column_components
        key = ("reach", float(min_agl_m), float(ceiling_agl_m))
        labels = self._limits_cache.get(key)
        if labels is None:
            floor_k, ceil_k, _, _ = self._pyramid(min_agl_m, ceiling_agl_m, 1)
            labels = column_components(floor_k, ceil_k)
            with _CACHE_LOCK:
                self._limits_cache[key] = labels
        return labels

    # ------------------------------------------------------------------ helpers
    def _local(self, lonlat, name):
        lon, lat = lonlat
        if not (math.isfinite(lon) and math.isfinite(lat) and -180 <= lon <= 180
                and -90 <= lat <= 90):
            raise OutsideTwinError(f"{name} ({lon}, {lat}) is not a WGS84 lon/lat position")
        x, y = self.twin.frame.to_local(lon, lat)
        g = self.twin.grid
        if not g.contains(x, y):
            b = self.twin.summary()["bounds_wgs84"]
            raise OutsideTwinError(
                f"{name} lon={lon:.6f}, lat={lat:.6f} is outside the twin "
                f"(lon {b[0]:.5f}..{b[2]:.5f}, lat {b[1]:.5f}..{b[3]:.5f})")
        return float(x), float(y)

    def _pad_height(self, col, alt, name, exc) -> float:
        ground = float(self.twin.ground_m[col])
        if alt is None:
            return ground
        if not (math.isfinite(alt) and ground - 1.0 <= alt <= ground + 1000.0):
            raise exc(f"{name} altitude {alt} m AMSL is not a plausible pad height here "
                      f"(ground is {ground:.1f} m AMSL)", code="invalid")
        return float(alt)

    def _pad_point(self, xy, z, name, exc):
        """The take-off/landing point on the 1 cm lattice, outside every footprint.

        Rounding may move a point that lies within 7 mm of a wall into the building; then
        the nearest lattice point around it that is outside is used (it stays in the same
        column: the shift is below 2 cm).
        """
        q = quantize([[xy[0], xy[1], z]])[0]
        if self.checker.building_at(q[0], q[1], q[2]) is None:
            return q
        best = None
        for dx in (-0.01, 0.0, 0.01):
            for dy in (-0.01, 0.0, 0.01):
                c = quantize([[q[0] + dx, q[1] + dy, q[2]]])[0]
                if self.checker.building_at(c[0], c[1], c[2]) is None:
                    d = math.hypot(c[0] - xy[0], c[1] - xy[1])
                    if best is None or d < best[0]:
                        best = (d, c)
        if best is None:
            raise exc(f"{name} lies on the wall of a building (within 1 cm); move it away",
                      code=f"{name}_in_building")
        return best[1]

    def _check_endpoint(self, xy, z, name, exc):
        bid = self.checker.building_at(xy[0], xy[1], z)
        if bid is not None:
            raise exc(f"{name} lies inside building {bid} (below its roof); choose a point "
                      "outside it or give the rooftop pad's altitude",
                      blocking=("building", bid), code=f"{name}_in_building")

    def _check_reachable(self, s_col, e_col, req) -> None:
        """Refuse at once a start and goal in different pockets of free air
        (:mod:`planner.reach`: no route can join them, whatever the window, level or
        zones); a column without free air is left to the search's own message."""
        from skytwin.planner.reach import free_columns
        labels = self._reach_labels(req.min_agl_m, req.ceiling_agl_m)
        a, b = int(labels[s_col]), int(labels[e_col])
        if a < 0 or b < 0 or a == b:
            return
        na, nb = free_columns(labels, a), free_columns(labels, b)
        name, n = ("goal", nb) if nb <= na else ("start", na)
        area = n * self.twin.grid.dx_m ** 2
        raise PlanError(
            f"no route: the {name} lies in a pocket of free air of about {area:,.0f} m2 "
            f"that no route from the {'start' if name == 'goal' else 'goal'} can enter "
            f"within {req.min_agl_m:.0f}-{req.ceiling_agl_m:.0f} m AGL with the "
            f"{self.twin.clearance_m:g} m building clearance (e.g. a courtyard closed by "
            "buildings that reach the ceiling); choose a point in open air",
            code="no_route")

    def _duration_bound_s(self, straight_m, req) -> float:
        sp = req.speeds
        up = req.ceiling_agl_m / sp.climb_mps + req.ceiling_agl_m / sp.descent_mps
        return 3.0 * straight_m / sp.cruise_mps + up + 120.0

    def _active_zones(self, t0, t1):
        """Local forms of the zones active at any time during ``[t0, t1]``."""
        if self.zones is None:
            return []
        return list(self.zones.local_zones(t0, t1))

    def _search_level(self, win, level, req, active, start, goal, ends=None):
        """Build the search grid of one level and search it (steps 3-5).

        ``ends``: with :meth:`_search_connected`, the coarse cells to search between
        instead of the start's and goal's own (already checked there)."""
        s_xy, s_col, gs = start
        e_xy, e_col, ge = goal
        wgrid, blocked = self._window_grid(win, level, req, active)
        col_mult = self._risk_columns(win, level, req, blocked)
        if ends is not None:
            si, gi = ends
        else:
            si = self._start_cell(wgrid, s_xy, gs, blocked, "start", StartBlocked, req,
                                  active)
            gi = self._start_cell(wgrid, e_xy, ge, blocked, "goal", GoalBlocked, req,
                                  active)
            # take-off and landing columns must not meet an active zone
            self._check_pad_column(wgrid, s_xy, si, gs, "start", StartBlocked, active)
            self._check_pad_column(wgrid, e_xy, gi, ge, "goal", GoalBlocked, active)
        return (wgrid, *self._run_search(wgrid, blocked, si, gi, req, col_mult))

    def _check_pad_column(self, wgrid, xy, cell, gz, name, exc, active):
        """The vertical take-off (landing) from the pad to ``cell`` meets no zone."""
        zc = wgrid.z0_m + (cell[2] + 0.5) * wgrid.dz_m
        for z in active:
            if z.contains_2d(*xy) and segment_intersects(
                    z, (xy[0], xy[1], gz), (xy[0], xy[1], zc), self._ground_range):
                what = z.zone.reason or "no-fly volume"
                raise exc(f"{name} lies inside no-fly volume {z.id} ({what}) active "
                          "during the flight; choose a point outside it or another time",
                          blocking=("zone", z.id), code=f"{name}_in_zone")

    def _search_connected(self, win, level, req, active, start, goal):
        """The coarse search of ``level`` when the start's or goal's own coarse cell
        is blocked (a point near a building): each such end is joined by a fine
        search in a small box around it to the nearest free coarse cell that its
        free air reaches, and the coarse search runs between those cells.

        Returns ``(centres, expansions, search_ms)`` (cell centres, start to goal,
        in the local frame) or ``None`` when no such cell is found (the caller then
        searches the next finer level, as before). Why: the fallback of the whole
        window to the next finer level cost up to 6 s (3 M expansions at 2 m) for a
        goal 10 m from a tall building (issue 14 profile).
        """
        wgrid, blocked = self._window_grid(win, level, req, active)
        col_mult = self._risk_columns(win, level, req, blocked)
        t_s = time.perf_counter()
        links, cells, expansions = [], [], 0
        for xy, pad, name, exc in ((start[0], start[2], "start", StartBlocked),
                                   (goal[0], goal[2], "goal", GoalBlocked)):
            i = int((xy[0] - wgrid.x0_m) // wgrid.dx_m)
            j = int((xy[1] - wgrid.y0_m) // wgrid.dx_m)
            bottoms = wgrid.z0_m + np.arange(wgrid.nz) * wgrid.dz_m
            free = np.flatnonzero((blocked[i, j, :] == 0) & (bottoms >= pad))
            if free.size:
                cell = (i, j, int(free[0]))
                self._check_pad_column(wgrid, xy, cell, pad, name, exc, active)
                links.append(None)
                cells.append(cell)
                continue
            got = self._connector(win, level, wgrid, blocked, xy, pad, name, exc, req,
                                  active)
            if got is None:
                return None
            path, cell, n = got
            links.append(path)
            cells.append(cell)
            expansions += n
        vp, _ = self._run_search(wgrid, blocked, cells[0], cells[1], req, col_mult)
        idx = np.asarray(vp.indices)
        coarse = np.column_stack([wgrid.x0_m + (idx[:, 0] + 0.5) * wgrid.dx_m,
                                  wgrid.y0_m + (idx[:, 1] + 0.5) * wgrid.dx_m,
                                  wgrid.z0_m + (idx[:, 2] + 0.5) * wgrid.dz_m])
        parts = [p for p in (links[0], coarse,
                             None if links[1] is None else links[1][::-1]) if p is not None]
        return (np.vstack(parts), expansions + int(vp.expansions),
                1e3 * (time.perf_counter() - t_s))

    def _connector(self, win, level, wgrid, blocked, xy, pad, name, exc, req, active):
        """Fine path from the pad above ``xy`` to a free cell of the coarse grid
        ``wgrid``: ``(centres from the pad outwards, coarse cell, expansions)`` or
        None. The fine box spans ``CONNECT_CELLS`` coarse cells each way, aligned to
        the coarse cells, and only coarse cells whose fine voxels are in the pad's
        free region (6-connected, the strict rule's connectivity) are candidates."""
        g = self.twin.grid
        i0w, j0w = win[0], win[2]
        ci = (g.column_of(*xy)[0] - i0w) // level
        cj = (g.column_of(*xy)[1] - j0w) // level
        r = CONNECT_CELLS
        a0, a1 = max(0, ci - r), min(blocked.shape[0], ci + r + 1)
        b0, b1 = max(0, cj - r), min(blocked.shape[1], cj + r + 1)
        nk = blocked.shape[2]
        fwin = (i0w + a0 * level, min(g.nx, i0w + a1 * level),
                j0w + b0 * level, min(g.ny, j0w + b1 * level))
        fgrid, fblk = self._window_grid(fwin, 1, req, active)
        self._risk_columns(fwin, 1, req, fblk)      # columns above max_band: blocked
        cell = self._start_cell(fgrid, xy, pad, fblk, name, exc, req, active)
        self._check_pad_column(fgrid, xy, cell, pad, name, exc, active)
        lab, _ = ndimage.label(fblk == 0)
        mine = lab == lab[cell]
        ni, nj = (fwin[1] - fwin[0]) // level, (fwin[3] - fwin[2]) // level
        if ni <= 0 or nj <= 0:
            return None
        reach = mine[:ni * level, :nj * level, :nk * level].reshape(
            ni, level, nj, level, nk, level).any(axis=(1, 3, 5))
        cand = reach & (blocked[a0:a0 + ni, b0:b0 + nj, :] == 0)
        hits = np.argwhere(cand)
        if hits.size == 0:
            return None
        fc = np.array([fgrid.x0_m + (cell[0] + 0.5) * fgrid.dx_m,
                       fgrid.y0_m + (cell[1] + 0.5) * fgrid.dx_m,
                       fgrid.z0_m + (cell[2] + 0.5) * fgrid.dz_m])
        ctr = np.column_stack([wgrid.x0_m + (hits[:, 0] + a0 + 0.5) * wgrid.dx_m,
                               wgrid.y0_m + (hits[:, 1] + b0 + 0.5) * wgrid.dx_m,
                               wgrid.z0_m + (hits[:, 2] + 0.5) * wgrid.dz_m])
        best = int(np.argmin(np.linalg.norm(ctr - fc, axis=1)))
        h = hits[best]
        # a fine voxel of that coarse cell (all of them are free and in the region)
        target = (int(h[0]) * level + (level // 2), int(h[1]) * level + (level // 2),
                  int(h[2]) * level + (level // 2))
        try:
            vp, _ = self._run_search(fgrid, fblk, cell, target, req, None)
        except search.NoRouteError:
            return None
        idx = np.asarray(vp.indices)
        path = np.column_stack([fgrid.x0_m + (idx[:, 0] + 0.5) * fgrid.dx_m,
                                fgrid.y0_m + (idx[:, 1] + 0.5) * fgrid.dx_m,
                                fgrid.z0_m + (idx[:, 2] + 0.5) * fgrid.dz_m])
        return path, (int(h[0]) + a0, int(h[1]) + b0, int(h[2])), int(vp.expansions)

    def _run_search(self, wgrid, blocked, si, gi, req, col_mult):
        """A* on ``blocked`` between two cells; ``(VoxelPath, search_ms)``."""
        need = int(np.prod([s + 2 for s in blocked.shape]))
        large = need > self.keep_workspace_voxels
        if large:
            if not self.large_search.acquire(timeout=self.large_search_wait_s):
                raise PlannerBusyError(
                    f"a search of {need / 1e6:.0f} M voxels must wait for another large "
                    f"search for more than {self.large_search_wait_s:g} s; retry later")
            ws = search.SearchWorkspace(blocked.shape)   # freed when this call returns
            self.large_searches += 1
        else:
            if self._workspace is None or not self._workspace_fits(blocked.shape):
                self._workspace = search.SearchWorkspace(blocked.shape)
            ws = self._workspace
        try:
            t_s = time.perf_counter()
            extra = None
            if req.proximity_cost_m > 0:
                # cells next to a blocked cell (buildings' protected volume, limits, zones)
                near = ndimage.binary_dilation(blocked > 0,
                                               structure=np.ones((3, 3, 3), bool))
                extra = np.where(near & (blocked == 0), req.proximity_cost_m, 0.0)
            padded = self._padded_of(blocked)
            if padded is not None:
                # a _window_grid grid: searched in its padded array, without a copy
                grid, kw = search.SearchGrid.from_padded(padded, extra, col_mult), {}
            else:
                grid, kw = blocked, {"voxel_cost": extra, "col_mult": col_mult}
            vp = search.find_path(grid, si, gi, rule="strict", workspace=ws,
                                  cell_size=(wgrid.dx_m, wgrid.dx_m, wgrid.dz_m),
                                  vertical_factor=req.climb_factor, column_bound=True,
                                  **kw)
        finally:
            if large:
                del ws
                self.large_search.release()
            elif ws.heap.shape[0] > 3 * (1 << 20):
                ws._alloc_heap(1 << 16)
        return vp, 1e3 * (time.perf_counter() - t_s)

    def _padded_of(self, blocked):
        """The padded array whose interior is ``blocked`` (a recent window grid)."""
        want = tuple(n + 2 for n in blocked.shape)
        for r in self._pads:
            p = r()
            if p is not None and p.shape == want \
                    and p[1:-1, 1:-1, 1:-1].ctypes.data == blocked.ctypes.data:
                return p
        return None

    # ------------------------------------------------------------------ ground risk
    def _risk_columns(self, win, level, req, blocked):
        """Per search column: the cost multiplier ``1 + w x r`` (None when w = 0);
        columns above ``max_band`` are blocked in ``blocked`` (in place)."""
        period = getattr(self, "_period", None)
        if self.risk is None or period is None:
            return None
        ni, nj = blocked.shape[:2]
        i0, j0 = win[0], win[2]
        if req.max_band is not None:
            bands = self.risk.bands(period).astype(np.float64)
            over = self.risk.pooled(bands, i0, j0, level, ni, nj) > req.max_band
            blocked[over] = 1
        if req.risk_weight <= 0:
            return None
        r = self.risk.pooled(self.risk.normalised(period), i0, j0, level, ni, nj)
        return 1.0 + req.risk_weight * r

    def _segment_risk(self, p0, p1, period, w):
        """Risk-weighted cost ``length x (1 + w x mean r)`` of a segment (``mean r``
        weighted by the exact length in each cell) and the highest band it crosses."""
        rk = self.risk
        i, j, ds = rk.track_cells(np.array([p0[:2], p1[:2]]))
        r = rk.normalised(period)[i, j]
        mean_r = float((r * ds).sum() / ds.sum()) if ds.sum() > 0 else float(r[0])
        band = int(rk.bands(period)[i, j].max())
        return math.dist(p0, p1) * (1.0 + w * mean_r), band

    def _risk_accept(self, air, req, period):
        w, cap = req.risk_weight, req.max_band
        # the voxel path's own segments, all at once (each sampled K times)
        rk = self.risk
        seg = np.diff(air, axis=0)
        hl = np.hypot(seg[:, 0], seg[:, 1])
        k = max(1, math.ceil(float(hl.max(initial=0.0)) / (rk.cell_m / 8.0)))
        t = (np.arange(k) + 0.5) / k
        i, j = rk.cell_of(air[:-1, 0:1] + t[None, :] * seg[:, 0:1],
                          air[:-1, 1:2] + t[None, :] * seg[:, 1:2])
        mean_r = rk.normalised(period)[i, j].mean(axis=1)
        costs = np.linalg.norm(seg, axis=1) * (1.0 + w * mean_r)
        prefix = np.concatenate([[0.0], np.cumsum(costs)])

        def accept(a, b):
            cost, band = self._segment_risk(air[a], air[b], period, w)
            if cap is not None and band > cap:
                return False
            return cost <= prefix[b] - prefix[a] + 1e-9

        return accept

    def _exposure(self, xyz, req, period):
        """The route's exposure report (None without a risk layer or derived zones)."""
        if self.risk is None and not self._derived:
            return None
        out: dict = {"risk_weight": req.risk_weight, "max_band": req.max_band}
        warnings = []
        if self.risk is not None:
            out.update(self.risk.exposure(xyz[:, :2], period))
            out["population_source"] = self.risk.source
            if out["worst_band"] >= 5:
                over = sum(v for k, v in out["length_by_band_m"].items()
                           if k in ("<50000", ">=50000"))
                warnings.append(f"overflies {over:.0f} m of densities above 5,000 "
                                f"people/km2 (worst band {out['worst_band_name']}, "
                                f"iGRC {out['igrc']})")
            if self.risk.source.startswith("estimated"):
                warnings.append("population estimated from the city model (buildings x "
                                "occupancy), not census data")
        from shapely.geometry import LineString, Point
        track = (LineString(xyz[:, :2]) if len(np.unique(xyz[:, :2], axis=0)) > 1
                 else Point(xyz[0, :2]))
        near = []
        for d, lz in self._derived:
            dist = lz.distance_to_geom(track)
            if dist <= self.near_m:
                near.append({"id": d.zone.id, "category": d.category, "rule": d.rule,
                             "source_id": d.source_id, "distance_m": round(dist, 1)})
                if d.category == "warning" and dist <= 0.0:
                    warnings.append(f"passes through warning zone {d.zone.id} "
                                    f"({d.rule})")
                elif dist > 0.0:
                    warnings.append(f"passes {dist:.0f} m from {d.category} zone "
                                    f"{d.zone.id} ({d.rule})")
        out["derived_zones_near"] = sorted(near, key=lambda n: n["distance_m"])
        out["warnings"] = warnings
        return out

    def workspace_bytes(self) -> int:
        """Bytes held by this planner's kept search workspace (0 when none)."""
        ws = self._workspace
        if ws is None:
            return 0
        return int(ws.rec.nbytes + ws.heap.nbytes + ws.pool.nbytes + ws.bucket_head.nbytes)

    def _window_voxels(self, win, level) -> float:
        i0, i1, j0, j1 = win
        return ((i1 - i0) / level) * ((j1 - j0) / level) * (self.twin.grid.nz / level)

    def _choose_window(self, s_col, e_col, straight_m, level=None):
        g = self.twin.grid
        margin_cells = int(math.ceil(max(150.0, 0.3 * straight_m) / g.dx_m))
        i0 = max(0, min(s_col[0], e_col[0]) - margin_cells)
        i1 = min(g.nx, max(s_col[0], e_col[0]) + margin_cells + 1)
        j0 = max(0, min(s_col[1], e_col[1]) - margin_cells)
        j1 = min(g.ny, max(s_col[1], e_col[1]) + margin_cells + 1)
        if level is None:
            level = 1
            while self._window_voxels((i0, i1, j0, j1), level) > self.max_search_voxels:
                level *= 2
        # align the window to the level so coarse cells tile fine columns exactly
        i0 -= i0 % level
        j0 -= j0 % level
        return level, (i0, i1, j0, j1)

    def _window_grid(self, win, f, req, active):
        """Search grid of a window at coarsening ``f`` (see module docstring, step 2-3).

        The grid is the interior of a padded array (remembered, weakly, for
        :meth:`_run_search`, which searches it without a copy)."""
        from skytwin.airspace.grid import GridSpec
        g = self.twin.grid
        i0, i1, j0, j1 = win
        ci0, cj0 = i0 // f, j0 // f          # windows are aligned to f
        ni = -(-(i1 - i0) // f)
        nj = -(-(j1 - j0) // f)
        nk = g.nz // f
        floor_p, ceil_p, gmin_p, gmax_p = self._pyramid(req.min_agl_m, req.ceiling_agl_m, f)
        floor_c = floor_p[ci0:ci0 + ni, cj0:cj0 + nj]
        ceil_c = ceil_p[ci0:ci0 + ni, cj0:cj0 + nj]
        ni, nj = floor_c.shape
        # built padded (a blocked border), so the search uses it without a copy
        padded = np.empty((ni + 2, nj + 2, nk + 2), dtype=np.uint8)
        _fill_window(padded, floor_c, ceil_c, f)
        blocked = padded[1:-1, 1:-1, 1:-1]     # a view: keeps ``padded`` alive
        self._pads.append(weakref.ref(padded))
        wgrid = GridSpec(x0_m=g.x0_m + i0 * g.dx_m, y0_m=g.y0_m + j0 * g.dx_m, z0_m=g.z0_m,
                         dx_m=g.dx_m * f, dz_m=g.dz_m * f, nx=ni, ny=nj, nz=nk)
        if active:
            g_lo = np.ascontiguousarray(gmin_p[ci0:ci0 + ni, cj0:cj0 + nj])
            g_hi = np.ascontiguousarray(gmax_p[ci0:ci0 + ni, cj0:cj0 + nj])
            for z in active:
                _mark_zone(blocked, z, wgrid, g_lo, g_hi)
        return wgrid, blocked

    def _pyramid(self, min_agl_m, ceiling_agl_m, f):
        """Max/min-pooled limit layers and ground over the whole twin at level ``f``.

        Returns ``(floor, ceil, ground_min, ground_max)`` of shape
        ``(ceil(nx/f), ceil(ny/f))``: the highest first-allowed fine layer, the lowest
        last-allowed fine layer, and the ground range of each coarse column. Columns
        beyond the twin's edge count as blocked. Cached per (limits, level).
        """
        key = (float(min_agl_m), float(ceiling_agl_m), int(f))
        hit = self._limits_cache.get(key)
        if hit is not None:
            return hit
        tw = self.twin
        g = tw.grid
        ground = tw.ground_m.astype(np.float32)
        floor_agl = np.ceil((ground.astype(np.float64) + min_agl_m - g.z0_m) / g.dz_m)
        floor_fine = np.maximum(tw.floor_k.astype(np.int32),
                                np.clip(floor_agl, -1, 32000).astype(np.int32))
        ceil_fine = (np.floor((ground.astype(np.float64) + ceiling_agl_m - g.z0_m) / g.dz_m)
                     - 1).clip(-1, 32000).astype(np.int32)
        ni, nj = -(-g.nx // f), -(-g.ny // f)
        pad = ((0, ni * f - g.nx), (0, nj * f - g.ny))

        def pool(a, fill, how):
            if f == 1:
                return a
            w = np.pad(a, pad, constant_values=fill).reshape(ni, f, nj, f)
            return w.max(axis=(1, 3)) if how == "max" else w.min(axis=(1, 3))

        hit = (pool(floor_fine, 32000, "max"), pool(ceil_fine, -1, "min"),
               pool(ground, np.float32(np.inf), "min"), pool(ground, np.float32(-np.inf), "max"))
        for a in hit[2:]:
            a[~np.isfinite(a)] = 0.0
        with _CACHE_LOCK:
            if len(self._limits_cache) > 16:
                self._limits_cache.clear()
            self._limits_cache[key] = hit
        return hit

    def _start_cell(self, wgrid, xy, pad_m, blocked, name, exc, req, active=()):
        i = int((xy[0] - wgrid.x0_m) // wgrid.dx_m)
        j = int((xy[1] - wgrid.y0_m) // wgrid.dx_m)
        bottoms = wgrid.z0_m + np.arange(wgrid.nz) * wgrid.dz_m
        free = np.flatnonzero((blocked[i, j, :] == 0) & (bottoms >= pad_m))
        if free.size == 0:
            for z in active:        # a zone over the point is the reason, if there is one
                if z.distance_2d(*xy) <= wgrid.dx_m * 1.5:
                    what = z.zone.reason or "no-fly volume"
                    raise exc(f"{name} lies inside (or at the edge of) no-fly volume {z.id} "
                              f"({what}), active during the flight, from the ground to the "
                              "ceiling; choose a point outside it or another time",
                              blocking=("zone", z.id), code=f"{name}_in_zone")
            c = self.twin.clearance_m
            # the search cell (not only the point) must clear: name the tallest building
            # within the clearance of any part of the cell
            reach = c + wgrid.dx_m * math.sqrt(2.0)
            near = self.checker.tree.query(Point(*xy), predicate="dwithin", distance=reach)
            if near.size:
                top = near[np.argmax(self.checker.tops_m[near])]
                bid = str(self.checker.ids[top])
                raise exc(f"no airspace to climb into above the {name}: it is within "
                          f"{reach:.1f} m (the {c:g} m clearance and a {wgrid.dx_m:g} m "
                          f"search cell) of building {bid}, whose roof + clearance "
                          f"reaches the {req.ceiling_agl_m:.0f} m AGL ceiling; move the "
                          "point away from the building", blocking=("building", bid),
                          code=f"{name}_blocked")
            raise exc(f"no airspace to climb into above the {name}: its {wgrid.dx_m:g} m "
                      f"search cell is blocked from the ground up to the "
                      f"{req.ceiling_agl_m:.0f} m AGL ceiling (tall buildings or no-fly "
                      "volumes around it); try a point further from them",
                      code=f"{name}_blocked")
        return (i, j, int(free[0]))

    def _segment_ok(self, p0, p1, req, zones, fast=False) -> bool:
        """The segment keeps the clearance, the altitude limits and out of ``zones``;
        ``fast``: buildings by the checker's numba screen (conservative; the caller
        checks the segments it keeps with the exact test)."""
        if fast:
            if self.checker.segment_blocked_fast(p0, p1):
                return False
        elif self.checker.segment_violation(p0, p1) is not None:
            return False
        if not self._altitude_ok(p0, p1, req):
            return False
        for z in zones:
            if segment_intersects(z, p0, p1, self._ground_range):
                return False
        return True

    def _altitude_ok(self, p0, p1, req) -> bool:
        """Cruise floor and ceiling along the segment (ground sampled every dx/8).

        The ground field is itself a raster estimate, so this is a check of the
        altitude rules, not of clearance (which the exact checker guarantees). One
        kernel (:func:`_agl_range`): this check runs for every smoothing candidate and
        cost ~17 % of a plan as numpy calls.
        """
        g = self.twin.grid
        n = max(2, int(math.ceil(math.dist(p0[:2], p1[:2]) / (0.125 * g.dx_m))) + 1)
        lo, hi = _agl_range(self.twin.ground_m, float(g.x0_m), float(g.y0_m),
                            float(g.dx_m), float(p0[0]), float(p0[1]), float(p0[2]),
                            float(p1[0]), float(p1[1]), float(p1[2]), n)
        return bool(lo >= req.min_agl_m - 1e-6 and hi <= req.ceiling_agl_m + 1e-6)

    def _ground_along(self, xyz):
        g = self.twin.grid
        i = np.clip(((xyz[:, 0] - g.x0_m) // g.dx_m).astype(np.int64), 0, g.nx - 1)
        j = np.clip(((xyz[:, 1] - g.y0_m) // g.dx_m).astype(np.int64), 0, g.ny - 1)
        return self.twin.ground_m[i, j].astype(np.float64)

    def _workspace_fits(self, shape) -> bool:
        return self._workspace.capacity >= int(np.prod([s + 2 for s in shape]))

    def _explain_no_route(self, win, level, req, active, start, goal, exc):
        """The error for a failed search: if the same search without the zones finds a
        route, the active zones are what encloses the start or goal."""
        if active:
            try:
                self._search_level(win, level, req, [], start, goal)
            except (PlanError, search.NoRouteError):
                pass
            else:
                names = ", ".join(z.id for z in active)
                return PlanError(f"no route: the goal or start is enclosed by active "
                                 f"no-fly volume(s) {names}", blocking=("zone", active[0].id))
        return PlanError(f"no route within the limits ({req.min_agl_m:.0f}-"
                         f"{req.ceiling_agl_m:.0f} m AGL, clearance {self.twin.clearance_m} m, "
                         f"search cells of {self.twin.grid.dx_m * level:g} m): {exc}")


@njit(**JIT)
def _fill_window(padded, floor_c, ceil_c, f):
    """Fill a padded search grid ``(ni+2, nj+2, nk+2) uint8`` (C order): the border
    blocked, and coarse cell ``(i, j, k)`` blocked (1) when its lowest fine layer
    ``k*f`` is below ``floor_c[i, j]`` or its highest ``(k+1)*f - 1`` is above
    ``ceil_c[i, j]`` (:meth:`Planner._window_grid`)."""
    nip, njp, nkp = padded.shape
    flat = padded.reshape(-1)
    flat[:] = 1
    for i in range(1, nip - 1):
        for j in range(1, njp - 1):
            # free: k*f >= floor and (k+1)*f - 1 <= ceil, i.e. k_lo <= k <= k_hi
            k_lo = max(0, -((-np.int64(floor_c[i - 1, j - 1])) // f))
            k_hi = min(nkp - 3, (np.int64(ceil_c[i - 1, j - 1]) + 1) // f - 1)
            if k_hi >= k_lo:
                o = (i * njp + j) * nkp + 1
                flat[o + k_lo:o + k_hi + 1] = 0


@njit(**JIT)
def _agl_range(ground, x0, y0, dx, ax, ay, az, bx, by, bz, n):
    """Lowest and highest height above ``ground`` of ``n`` evenly spaced points from
    ``a`` to ``b`` (ends included), each over the ground of its column (clipped to
    the grid)."""
    nx, ny = ground.shape
    lo = np.inf
    hi = -np.inf
    for k in range(n):
        t = k / (n - 1)
        x = ax + t * (bx - ax)
        y = ay + t * (by - ay)
        z = az + t * (bz - az)
        i = min(max(int(np.floor((x - x0) / dx)), 0), nx - 1)
        j = min(max(int(np.floor((y - y0) / dx)), 0), ny - 1)
        agl = z - np.float64(ground[i, j])
        lo = min(lo, agl)
        hi = max(hi, agl)
    return lo, hi


RISK_LEVEL_FACTOR = 2
"""A search with ``risk_weight > 0`` starts at this times the usual level (see
:meth:`Planner.plan`; measured in benchmarks/RESULTS.md)."""

CONNECT_CELLS = 4
"""Coarse cells searched each way around a start or goal whose own coarse cell is
blocked, for a free coarse cell to join (:meth:`Planner._search_connected`)."""

_CACHE_LOCK = threading.Lock()
_CACHES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _shared_cache(twin) -> dict:
    """The pyramid cache of a twin, shared by every Planner (thread) using it.

    Pyramids are read-only arrays (up to a few hundred MB at level 1 on a 10 km twin), so
    one copy per twin, not per thread; two threads may build the same entry once each.
    """
    with _CACHE_LOCK:
        c = _CACHES.get(twin)
        if c is None:
            c = _CACHES[twin] = {}
        return c


def _mark_zone(blocked, zone, wgrid, ground_lo, ground_hi):
    """Block every cell of ``blocked`` touched by ``zone`` (conservative: AGL limits
    span from the lower limit over a cell's lowest ground to the upper limit over its
    highest ground)."""
    i0, i1, j0, j1, k_lo, k_hi = zone_voxels(zone, wgrid, ground_lo,
                                             ground_hi_m=ground_hi)
    if i1 <= i0 or j1 <= j0:
        return
    k = np.arange(blocked.shape[2])
    hit = (k[None, None, :] >= k_lo[:, :, None]) & (k[None, None, :] <= k_hi[:, :, None])
    blocked[i0:i1, j0:j1] |= hit.astype(np.uint8)


def _drop_repeats(xyz):
    keep = np.ones(len(xyz), dtype=bool)
    keep[1:] = np.any(np.abs(np.diff(xyz, axis=0)) > 0, axis=1)
    return xyz[keep]
