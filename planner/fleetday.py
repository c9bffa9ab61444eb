"""Fleet-days: plan and deconflict a whole day of delivery flights in independent pieces.

Why this module exists
----------------------
:func:`planner.deconflict.deconflict` holds one fleet in one process: its exclusion rows
grow with the square of the traffic density times the span (10.5 M rows for 10,000 flights
in one hour), and its rolling horizon stops on a wall-clock budget, so two runs of it need
not agree. A fleet-day (e.g. 100,000 flights over 24 h) needs pieces that are independent,
deterministic, and small enough to run anywhere, so that the *same* function runs in this
process or fanned out over a cluster and gives the same answer bit for bit. Everything here
is pure computation on plain data (``Trajectory``, numpy arrays, dataclasses); the fan-out
is an *executor* passed in (:class:`LocalExecutor` here; a Ray one lives in
``server/fleet_ray.py``), so planner/ never imports a distributed engine.

Traffic (deterministic per flight)
----------------------------------
Hubs of ``pads_per_hub`` pads (``pad_spacing_m`` apart, >= the 30 m horizontal minimum) are
drawn once from the seed; their count scales with the fleet (default: one pad per
``pad_interval_s`` = 240 s of hub traffic on average, so pads are not saturated).
Flight ``i`` then draws everything (departure uniform over ``[t0_s, t0_s + duration_s)``,
priority, hub delivery out or back within ``delivery_radius_m`` or a crossing between two
random points, and the redraws when an end is inside a building or unreachable) from its
own generator ``default_rng([seed, 2, i])``. Its route therefore depends only on
``(twin, spec, i)``, never on which worker plans it or in which order: that is what makes
the fanned-out run equal the single-process one.

Deconfliction windows, and why they are exact
---------------------------------------------
Two flights can only constrain each other when the times they may be airborne overlap.
Flight ``f`` (any of its layer options, any delay ``0..D_f``) is airborne within
``[s_f, e_f + D_f]`` (``s_f`` its departure, ``e_f`` the latest landing over its options);
an exclusion row widens segment times by the buffer ``b`` (half on each side). So with the
reach ``R = max_f (e_f - s_f + D_f) + 2 b``, flights whose departures differ by more than
``R`` share no row. Cut the day by departure time into windows of length ``L >= R``: a flight
of window ``k`` then shares rows only with flights of windows ``k - 1``, ``k`` and ``k + 1``.
Solve every even window on its own (they share no rows with each other), then every odd
window with the flights of both neighbouring even windows fixed as they will fly (odd
windows share no rows with each other either). Every row is then honoured: rows inside a
window by that window's solve, rows across a boundary by the odd window's solve, which sees
the even neighbour's final trajectories as immovable obstacles. A flight crossing a window
boundary in the air is no special case: windows are sets of flights (by departure), not
slices of time. The windows of one phase are independent tasks (the unit of fan-out), and
the two phases are a 2-colouring of the window chain. Finally the independent verifier
(:mod:`planner.verify`, which shares no code with the row builder) re-checks the whole day.
The price of the split is optimality, not safety: an odd window cannot move the even
flights it meets.

Inside a window: options and rows as in :mod:`planner.deconflict` (fixed flights get one
option, delay 0, and no rows among themselves), first-come-first-served in request order,
then (``method="cpsat"``) CP-SAT over sub-windows of ``sub_window_flights`` in departure
order with lazily added rows and connected components solved separately, each component
with one search worker and a *deterministic* time limit (``max_deterministic_time``), so the
result does not depend on the machine's load. A wall-clock cap per component only guards
against hangs; when it fires the component keeps its FCFS plan and the window's stats count
it (``wall_capped``), which is the one case where two runs may differ.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field

import numpy as np
from ortools.sat.python import cp_model

from skytwin.planner.conflicts import ConflictInputError, Separation
from skytwin.planner.deconflict import (
    Choice,
    DeconflictOptions,
    Problem,
    Resolution,
    _adjacency,
    _best_alone,
    _components,
    _fcfs,
    _objective_of,
    _options_of,
    _rows_between,
    _unplaced_reason,
    _window_rows,
    build_model,
)
from skytwin.planner.trajectory import Trajectory

__all__ = [
    "FleetDaySpec",
    "FleetWorker",
    "LocalExecutor",
    "WindowParams",
    "WindowResult",
    "deconflict_day",
    "draw_hubs",
    "plan_chunk",
    "plan_day",
    "solve_window",
    "verify_day",
    "warm_up",
    "window_cuts",
]

log = logging.getLogger(__name__)

DAY_S = 86_400.0


# ----------------------------------------------------------------------------- traffic

@dataclass(frozen=True)
class FleetDaySpec:
    """A seeded fleet-day (see module docstring, "Traffic").

    Attributes
    ----------
    n_flights : int
    seed : int
    duration_s : float
        Departures spread over this span [s] (default 24 h).
    t0_s : float
        First possible departure [s].
    n_hubs : int or None
        Delivery hubs; default scales with the fleet (one pad per ``pad_interval_s``).
    pads_per_hub, pad_spacing_m : int, float
    pad_interval_s : float
        Mean time between hub flights per pad used to size the default hub count [s].
    hub_share : float
        Share of hub deliveries (half out, half back); the rest cross the city.
    delivery_radius_m : float
        Hub deliveries end within this distance of the pad [m].
    max_delay_s, priority_share : float
        Every flight's maximum departure delay [s]; share of priority-3 flights.
    max_tries : int
        Redraws of a flight whose end is blocked or unreachable before it is skipped.
    chunk_flights : int
        Flights per planning task (a task should take well over 10 ms).
    """

    n_flights: int
    seed: int = 0
    duration_s: float = DAY_S
    t0_s: float = 0.0
    n_hubs: int | None = None
    pads_per_hub: int = 8
    pad_spacing_m: float = 35.0
    pad_interval_s: float = 240.0
    hub_share: float = 0.8
    delivery_radius_m: float = 3000.0
    max_delay_s: float = 600.0
    priority_share: float = 0.1
    max_tries: int = 20
    chunk_flights: int = 100

    def __post_init__(self):
        if not (isinstance(self.n_flights, (int, np.integer)) and self.n_flights >= 1):
            raise ValueError(f"n_flights must be an integer >= 1, got {self.n_flights!r}")
        for name in ("duration_s", "pad_spacing_m", "pad_interval_s", "delivery_radius_m"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v > 0):
                raise ValueError(f"{name} must be a finite number > 0, got {v!r}")
        if not (math.isfinite(self.max_delay_s) and self.max_delay_s >= 0):
            raise ValueError(f"max_delay_s must be finite and >= 0, got {self.max_delay_s!r}")
        for name in ("hub_share", "priority_share"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {v!r}")
        if self.n_hubs is not None and self.n_hubs < 1:
            raise ValueError(f"n_hubs must be >= 1 (or None for the default), got "
                             f"{self.n_hubs!r}")
        if self.pads_per_hub < 1 or self.max_tries < 1 or self.chunk_flights < 1:
            raise ValueError("pads_per_hub, max_tries and chunk_flights must be >= 1")

    @property
    def hubs(self) -> int:
        """The number of hubs (``n_hubs`` or the default scaled with the fleet)."""
        if self.n_hubs is not None:
            return int(self.n_hubs)
        pads = self.n_flights * self.hub_share / (self.duration_s / self.pad_interval_s)
        return max(3, math.ceil(pads / self.pads_per_hub))


class FleetWorker:
    """Per-process state of a planning worker: the twin and one lazily built planner."""

    def __init__(self, twin):
        self.twin = twin
        self._planner = None

    @property
    def planner(self):
        if self._planner is None:
            from skytwin.planner.route import Planner
            self._planner = Planner(self.twin)
        return self._planner


def draw_hubs(twin, spec: FleetDaySpec) -> list:
    """Hub pads ``[[(x_m, y_m), ...], ...]``: seeded points of the twin whose pads all lie
    inside the grid and outside every building (+1 m).

    Raises
    ------
    ValueError
        When the twin has no room for the hubs (10,000 draws without success).
    """
    from skytwin.planner.exact import ExactChecker

    rng = np.random.default_rng([spec.seed, 1])
    g = twin.grid
    chk = ExactChecker.for_twin(twin)
    hubs = []
    for _ in range(10_000):
        if len(hubs) == spec.hubs:
            return hubs
        c = (float(rng.uniform(g.x0_m + 20, g.x1_m - 20)),
             float(rng.uniform(g.y0_m + 20, g.y1_m - 20)))
        pads = [(c[0] + (k - (spec.pads_per_hub - 1) / 2) * spec.pad_spacing_m, c[1])
                for k in range(spec.pads_per_hub)]
        if all(g.contains(*p) and chk.building_at(p[0], p[1], None, 1.0) is None
               for p in pads):
            hubs.append(pads)
    raise ValueError(f"found room for only {len(hubs)} of {spec.hubs} hubs of "
                     f"{spec.pads_per_hub} pads in this twin: lower n_hubs or pads_per_hub")


def _plan_one(worker: FleetWorker, spec: FleetDaySpec, hubs, i: int):
    from skytwin.airspace.errors import AirspaceError
    from skytwin.planner.route import RouteRequest

    rng = np.random.default_rng([spec.seed, 2, i])
    tw = worker.twin
    g = tw.grid
    lo_x, hi_x, lo_y, hi_y = g.x0_m + 20, g.x1_m - 20, g.y0_m + 20, g.y1_m - 20
    t_dep = spec.t0_s + float(rng.uniform(0, spec.duration_s))
    prio = 3.0 if rng.random() < spec.priority_share else 1.0
    for _ in range(spec.max_tries):
        u = rng.random()
        if u < spec.hub_share:
            hub = hubs[int(rng.integers(len(hubs)))]
            pad = hub[int(rng.integers(len(hub)))]
            ang = rng.uniform(0, 2 * np.pi)
            r = spec.delivery_radius_m * math.sqrt(rng.uniform(0.02, 1.0))
            other = (min(max(pad[0] + r * math.cos(ang), lo_x), hi_x),
                     min(max(pad[1] + r * math.sin(ang), lo_y), hi_y))
            kind, (o, d) = (("out", (pad, other)) if u < spec.hub_share / 2
                            else ("back", (other, pad)))
        else:
            kind = "through"
            o = (float(rng.uniform(lo_x, hi_x)), float(rng.uniform(lo_y, hi_y)))
            d = (float(rng.uniform(lo_x, hi_x)), float(rng.uniform(lo_y, hi_y)))
        if math.dist(o, d) < 100.0:
            continue
        fid = f"D{i:06d}"
        try:
            r = worker.planner.plan(RouteRequest(tw.frame.to_wgs84(*o),
                                                 tw.frame.to_wgs84(*d),
                                                 depart_s=t_dep, flight_id=fid))
        except AirspaceError:
            continue
        tr = r.trajectory
        return Trajectory(fid, tr.xyz_m, tr.t_s, prio, spec.max_delay_s,
                          {"kind": kind, "origin": tuple(map(float, o)),
                           "dest": tuple(map(float, d))})
    return None


def warm_up(worker: FleetWorker, job) -> int:
    """Plan ``job = (spec, hubs, k)``'s first ``k`` flights and drop them: loads the numba
    kernels and builds the planner's caches before anything is timed. Returns ``k``."""
    spec, hubs, k = job
    for i in range(k):
        _plan_one(worker, spec, hubs, i)
    return k


def plan_chunk(worker: FleetWorker, job) -> list:
    """Plan flights ``range(lo, hi)`` of a fleet-day; ``job = (spec, hubs, lo, hi)``.

    Returns a list with one ``Trajectory`` or ``None`` (skipped after ``max_tries``) per
    flight, in index order.
    """
    spec, hubs, lo, hi = job
    return [_plan_one(worker, spec, hubs, i) for i in range(lo, hi)]


# ----------------------------------------------------------------------------- windows

@dataclass(frozen=True)
class WindowParams:
    """How each window is resolved, as data.

    ``method`` "cpsat" (FCFS, then CP-SAT improvement) or "fcfs". ``min_window_s`` is the
    smallest window length [s] (it is raised to the reach, see module docstring).
    ``sub_window_flights``, ``max_passes``: CP-SAT re-optimises this many flights at a
    time (departure order), up to ``max_passes`` passes (the second shifted by half a
    sub-window) while a pass improves. ``component_deterministic_s``: CP-SAT's
    deterministic time limit per component; ``component_wall_cap_s``: a hang guard only.
    """

    method: str = "cpsat"
    min_window_s: float = 1800.0
    sub_window_flights: int = 200
    max_passes: int = 2
    component_deterministic_s: float = 2.0
    component_wall_cap_s: float = 60.0
    random_seed: int = 0
    max_lazy_rounds: int = 50

    def __post_init__(self):
        if self.method not in ("cpsat", "fcfs"):
            raise ValueError(f"method must be 'cpsat' or 'fcfs', got {self.method!r}")
        if not (math.isfinite(self.min_window_s) and self.min_window_s > 0):
            raise ValueError(f"min_window_s must be > 0, got {self.min_window_s!r}")
        if self.sub_window_flights < 1 or self.max_passes < 1:
            raise ValueError("sub_window_flights and max_passes must be >= 1")
        if not (self.component_deterministic_s > 0 and self.component_wall_cap_s > 0):
            raise ValueError("component time limits must be > 0")


def _span_s(tr: Trajectory, opts: DeconflictOptions) -> float:
    """Latest landing over the flight's layer options, minus its departure [s]."""
    end = tr.t_end_s
    for traj, _shift, _route in _options_of(tr, (), opts):
        end = max(end, traj.t_end_s)
    return end - tr.t_start_s


def window_cuts(flights, sep: Separation, opts: DeconflictOptions,
                min_window_s: float) -> tuple[list, float]:
    """Split flights into departure-time windows no shorter than their reach.

    Returns
    -------
    windows : list of (window_id, (k,) int64 array)
        Non-empty windows in time order: id ``floor((departure - first) / window_s)``
        and the flight indices (departure order). Parity is taken on the id, so an
        empty window in between only separates its neighbours further.
    window_s : float
        The window length used: ``max(min_window_s, reach)`` (module docstring).
    """
    if not flights:
        return [], float(min_window_s)
    dep = np.array([f.t_start_s for f in flights])
    reach = max(_span_s(f, opts) + f.max_delay_s for f in flights) + 2 * sep.time_buffer_s
    length = max(float(min_window_s), reach + 1e-6)
    wid = np.floor((dep - dep.min()) / length).astype(np.int64)
    order = np.lexsort((np.arange(len(flights)), dep))
    windows = []
    for w in np.unique(wid):
        sel = order[wid[order] == w]
        windows.append(sel.astype(np.int64))
    return list(zip(np.unique(wid).tolist(), windows, strict=True)), length


@dataclass
class WindowResult:
    """What one window's solve returns (plain data; pickles cheaply).

    ``choices`` and ``trajectories`` hold the placed flights (as they will fly),
    ``unplaced`` maps the others to their reason.
    """

    window: int
    choices: list
    trajectories: list
    unplaced: dict
    objective: float
    fcfs_objective: float
    status: str
    stats: dict = field(default_factory=dict)


def _window_problem(free, fixed, sep, opts):
    """Problem over free flights (all options) and fixed ones (one option, no delay)."""
    opt_traj, opt_layer, opt_route, opt_flight, starts, group = [], [], [], [], [0], []
    flights = list(free) + list(fixed)
    nf = len(free)
    for f, tr in enumerate(flights):
        cand = _options_of(tr, (), opts) if f < nf else [(tr, 0, 0)]
        for traj, shift, r in cand:
            opt_traj.append(traj)
            opt_layer.append(shift)
            opt_route.append(r)
            opt_flight.append(f)
            group.append(f if f < nf else nf)   # fixed flights never pair with each other
        starts.append(len(opt_traj))
    max_steps = np.array([int(math.floor(f.max_delay_s / opts.delay_step_s + 1e-9))
                          if k < nf else 0 for k, f in enumerate(flights)], np.int64)
    opt_flight = np.asarray(opt_flight, np.int64)
    rows = (_rows_between(opt_traj, opt_flight, max_steps[opt_flight], sep, opts,
                          group=np.asarray(group, np.int64))
            if flights else np.zeros((0, 6), np.int64))
    return Problem(flights, sep, opts, np.asarray(starts, np.int64), opt_traj,
                   np.asarray(opt_layer, np.int64), np.asarray(opt_route, np.int64),
                   max_steps, rows)


def _improve(problem, adj, free_idx, cur_opt, cur_d, params, stats):
    """CP-SAT over sub-windows of the free flights (deterministic, see module doc)."""
    n = problem.n
    dep = np.array([problem.flights[f].t_start_s for f in free_idx])
    order = np.asarray(free_idx)[np.argsort(dep, kind="stable")]
    w = params.sub_window_flights
    for p in range(params.max_passes):
        offset = (w // 2) * (p % 2)
        cuts = [0, *range(offset or w, len(order), w), len(order)]
        before = _objective_of(problem, free_idx, cur_opt, cur_d)
        for a, b in zip(cuts[:-1], cuts[1:]):
            if b <= a:
                continue
            win = [int(f) for f in order[a:b]]
            pair_rows, forbidden = _window_rows(problem, adj, win, cur_opt, cur_d)
            sol_opt, sol_d = cur_opt.copy(), cur_d.copy()
            for f in win:
                sol_opt[f], sol_d[f] = _best_alone(problem, f, forbidden)
            active: set = set()
            settled = False
            for _ in range(params.max_lazy_rounds):
                r = pair_rows
                diff = sol_d[r[:, 2]] - sol_d[r[:, 0]]
                viol = ((sol_opt[r[:, 0]] == r[:, 1]) & (sol_opt[r[:, 2]] == r[:, 3])
                        & (diff >= r[:, 4]) & (diff <= r[:, 5]))
                if not viol.any():
                    settled = True
                    break
                new_pairs = set(zip(r[viol, 0].tolist(), r[viol, 2].tolist()))
                active |= new_pairs
                touched = {f for pr in new_pairs for f in pr}
                act = np.array(sorted(active), np.int64)
                in_act = np.isin(r[:, 0] * n + r[:, 2], act[:, 0] * n + act[:, 1])
                for c in _components(n, active):
                    if not touched.intersection(c):
                        continue
                    cset = np.zeros(n, bool)
                    cset[c] = True
                    crow = r[in_act & cset[r[:, 0]]].tolist()
                    model, delay, optv, _ = build_model(problem, c, crow, forbidden,
                                                        cur_opt, cur_d)
                    solver = cp_model.CpSolver()
                    solver.parameters.num_workers = 1
                    solver.parameters.random_seed = params.random_seed
                    solver.parameters.max_deterministic_time = \
                        params.component_deterministic_s
                    solver.parameters.max_time_in_seconds = params.component_wall_cap_s
                    st = solver.solve(model)
                    stats["models"] += 1
                    if solver.wall_time >= params.component_wall_cap_s * 0.99:
                        stats["wall_capped"] += 1
                    if st == cp_model.OPTIMAL:
                        stats["optimal"] += 1
                    if st not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
                        for f in c:   # keep the incumbent (the hint) for this component
                            sol_opt[f], sol_d[f] = cur_opt[f], cur_d[f]
                        continue
                    for f in c:
                        sol_d[f] = solver.value(delay[f])
                        sol_opt[f] = -1
                        for g, x in optv[f].items():
                            if solver.boolean_value(x):
                                sol_opt[f] = g
            if settled and (_objective_of(problem, win, sol_opt, sol_d)
                            <= _objective_of(problem, win, cur_opt, cur_d)):
                cur_opt[win], cur_d[win] = sol_opt[win], sol_d[win]
            elif not settled:
                stats["unsettled"] += 1
        stats["passes"] += 1
        if _objective_of(problem, free_idx, cur_opt, cur_d) >= before - 1e-9:
            break


def solve_window(_worker, task) -> WindowResult:
    """Resolve one window: ``task = (window_id, free, fixed, sep, options, params)``.

    ``free`` are the window's flights (Trajectory, request order), ``fixed`` the flights
    already resolved around it, as they will fly. The result places free flights only,
    conflict-free among themselves and against every fixed flight (every exclusion row
    re-checked before returning).
    """
    t0 = time.perf_counter()
    wid, free, fixed, sep, opts, params = task
    problem = _window_problem(free, fixed, sep, opts)
    n, nf = problem.n, len(free)
    adj = _adjacency(n, problem.rows)
    cur_opt = np.full(n, -1, np.int64)
    cur_d = np.zeros(n, np.int64)
    cur_opt[nf:] = problem.opt_start[nf:n]          # fixed: their one option, no delay
    _fcfs(np.arange(nf, dtype=np.int64), problem.opt_start, problem.max_steps,
          problem.rows, adj[0], adj[1], cur_opt, cur_d)
    free_idx = list(range(nf))
    fcfs_obj = _objective_of(problem, free_idx, cur_opt, cur_d)
    stats = {"flights": nf, "fixed": len(fixed), "rows": int(problem.rows.shape[0]),
             "models": 0, "optimal": 0, "wall_capped": 0, "unsettled": 0, "passes": 0}
    t_fcfs = time.perf_counter()
    status = "FCFS"
    if params.method == "cpsat" and nf:
        fcfs_opt, fcfs_d = cur_opt.copy(), cur_d.copy()
        _improve(problem, adj, free_idx, cur_opt, cur_d, params, stats)
        if _violated_rows(problem, cur_opt, cur_d):
            log.error("window %d: CP-SAT plan breaks a row; keeping FCFS", wid)
            cur_opt, cur_d = fcfs_opt, fcfs_d
        else:
            status = "CPSAT"
    if _violated_rows(problem, cur_opt, cur_d):
        raise RuntimeError(f"window {wid}: FCFS plan breaks an exclusion row")  # a bug
    choices, trajs, unplaced = [], [], {}
    step = opts.delay_step_s
    for f in range(nf):
        fl = problem.flights[f]
        o = cur_opt[f]
        if o < 0:
            unplaced[fl.flight_id] = _unplaced_reason(problem, f, cur_opt, adj)
            continue
        d = float(cur_d[f] * step)
        choices.append(Choice(fl.flight_id, d, int(problem.opt_layer[o]),
                              int(problem.opt_route[o])))
        tr = problem.opt_traj[o]
        trajs.append(Trajectory(fl.flight_id, tr.xyz_m, tr.t_s + d, fl.priority,
                                fl.max_delay_s, dict(fl.meta)))
    stats.update(build_fcfs_s=t_fcfs - t0, cpsat_s=time.perf_counter() - t_fcfs)
    return WindowResult(wid, choices, trajs, unplaced,
                        _objective_of(problem, free_idx, cur_opt, cur_d), fcfs_obj,
                        status, stats)


def _violated_rows(problem, chosen_opt, chosen_d) -> int:
    r = problem.rows
    if r.shape[0] == 0:
        return 0
    diff = chosen_d[r[:, 2]] - chosen_d[r[:, 0]]
    return int(((chosen_opt[r[:, 0]] == r[:, 1]) & (chosen_opt[r[:, 2]] == r[:, 3])
                & (diff >= r[:, 4]) & (diff <= r[:, 5])).sum())


# ----------------------------------------------------------------------------- executors

class LocalExecutor:
    """Runs every task in this process, in order: the reference any other executor must
    match. ``map(fn, items, progress)`` calls ``fn(worker, item)`` for each item and
    returns the results in item order; ``progress(done, total)`` after each."""

    def __init__(self, twin=None):
        self.worker = FleetWorker(twin)

    def map(self, fn, items, progress=None) -> list:
        out = []
        for k, item in enumerate(items):
            out.append(fn(self.worker, item))
            if progress is not None:
                progress(k + 1, len(items))
        return out


def plan_day(twin, executor, spec: FleetDaySpec, progress=None) -> list[Trajectory]:
    """Plan a fleet-day's routes over ``twin`` through ``executor`` (module docstring,
    "Traffic"); the executor's workers must hold the same twin.

    Returns the planned flights in index order (skipped flights are left out).
    """
    hubs = draw_hubs(twin, spec)
    n, c = spec.n_flights, spec.chunk_flights
    jobs = [(spec, hubs, lo, min(lo + c, n)) for lo in range(0, n, c)]
    chunks = executor.map(plan_chunk, jobs, progress)
    return [tr for chunk in chunks for tr in chunk if tr is not None]


def deconflict_day(flights, executor, sep: Separation | None = None,
                   options: DeconflictOptions | None = None,
                   params: WindowParams | None = None, progress=None,
                   verify_result: bool = True) -> Resolution:
    """Resolve a fleet-day window by window (module docstring), verified as a whole.

    Parameters
    ----------
    flights : sequence of Trajectory
        In request order; ids unique.
    executor : object with ``map(fn, items, progress)`` (e.g. :class:`LocalExecutor`)
    sep, options, params : optional configuration
    progress : callable(done, total), optional
        Called as windows finish (both phases count).

    Returns
    -------
    Resolution
        ``status`` "CPSAT" or "FCFS" (the method), ``report`` the independent
        verifier's over all flights, ``stats`` with the windows and timings.

    Raises
    ------
    ConflictInputError
        Repeated ids or a non-Trajectory.
    """
    sep = Separation() if sep is None else sep
    opts = DeconflictOptions() if options is None else options
    params = WindowParams() if params is None else params
    flights = list(flights)
    for k, tr in enumerate(flights):
        if not isinstance(tr, Trajectory):
            raise ConflictInputError(f"item {k} is a {type(tr).__name__}, not a Trajectory")
    ids = [f.flight_id for f in flights]
    if len(set(ids)) != len(ids):
        raise ConflictInputError("flight ids must be unique")
    t0 = time.perf_counter()
    windows, length = window_cuts(flights, sep, opts, params.min_window_s)
    by_id = dict(windows)
    total = len(windows)
    done = [0]

    def tick(_d, _t):
        done[0] += 1
        if progress is not None:
            progress(done[0], total)

    def members(w):
        return [flights[i] for i in by_id.get(w, ())]

    results: dict = {}
    for parity in (0, 1):
        tasks = []
        for w, _idx in windows:
            if w % 2 != parity:
                continue
            fixed = [] if parity == 0 else [
                tr for nb in (w - 1, w + 1) if nb in results
                for tr in results[nb].trajectories]
            tasks.append((w, members(w), fixed, sep, opts, params))
        for res in executor.map(solve_window, tasks, tick):
            results[res.window] = res
    t_solved = time.perf_counter()
    choices, unplaced, trajs = {}, {}, []
    objective = fcfs_objective = 0.0
    for w, _idx in windows:
        r = results[w]
        choices.update({c.flight_id: c for c in r.choices})
        unplaced.update(r.unplaced)
        trajs.extend(r.trajectories)
        objective += r.objective
        fcfs_objective += r.fcfs_objective
    order = {fid: k for k, fid in enumerate(ids)}
    trajs.sort(key=lambda t: order[t.flight_id])
    stats = {"windows": total, "window_s": length,
             "flights_per_window_max": max((len(i) for _w, i in windows), default=0),
             "rows": sum(r.stats["rows"] for r in results.values()),
             "models": sum(r.stats["models"] for r in results.values()),
             "wall_capped": sum(r.stats["wall_capped"] for r in results.values()),
             "fcfs_objective": fcfs_objective, "solve_s": t_solved - t0}
    res = Resolution(choices, unplaced, trajs,
                     "CPSAT" if params.method == "cpsat" else "FCFS", objective, None, stats)
    if verify_result:
        t_v = time.perf_counter()
        res.report = verify_day(res, flights, sep, opts)
        stats["verify_s"] = time.perf_counter() - t_v
    return res


def verify_day(res: Resolution, flights, sep: Separation, opts: DeconflictOptions):
    """The independent verifier (:mod:`planner.verify`) over a whole resolved day.

    Every pair of flights is checked for residual conflicts and every delay against its
    flight's maximum. The cruise band is checked on the flights whose layer was changed:
    it is the rule for layer changes (``DeconflictOptions``: a shift stays inside
    ``[min_cruise_m, max_cruise_m]``, a band taken conservatively over the twin's lowest
    ground by ``fixtures.traffic.city_options``), while a flight at its own layer flies
    the route the planner returned, already held to its ceiling above the ground *under
    it*, which can exceed that conservative AMSL band over higher ground.
    """
    from skytwin.planner.verify import verify   # independent checker

    rep = verify(res.trajectories, sep,
                 delays_s={k: c.delay_s for k, c in res.choices.items()},
                 max_delay_s={f.flight_id: f.max_delay_s for f in flights})
    band = (opts.min_cruise_m, opts.max_cruise_m)
    for tr in res.trajectories:
        if res.choices[tr.flight_id].layer_shift != 0:
            rep.violations.extend(verify([tr], sep, cruise_band_m=band).violations)
    return rep
