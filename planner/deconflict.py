"""Fleet deconfliction: departure delays, cruise layers and alternate routes (CP-SAT).

Design
------
Options. Each flight chooses a departure delay ``d`` in ``0, step, ..., max_delay_s`` and an
*option* = (cruise-layer shift, route): its primary route or one of its alternates, with
cruise waypoints moved by ``shift * layer_spacing_m`` (``Trajectory.shifted``), keeping
only shifts whose cruise altitudes stay inside ``[min_cruise_m, max_cruise_m]``.

Pairwise exclusion rows. A delay only shifts a flight in time, so for two options of two
flights the delays conflict exactly when ``d_b - d_a`` falls in the set of relative shifts
at which they lose separation: for every segment pair this is the exact open interval of
:func:`planner.conflicts.shift_intervals`, widened by the time buffer on both sides and
rounded to the delay steps. Every potential meeting is precomputed once, with the same
space-time buckets as detection (time windows stretched by the delay range), as *rows*
``(flight a, option a, flight b, option b, kmin, kmax)``: "``d_b - d_a`` in
``[kmin, kmax]`` steps is forbidden when a flies option a and b flies option b".

FCFS baseline (how UTM works today): flights in request order, each takes the earliest
option (delay ascending, then option order: layer preference then route) compatible with
the rows of the flights already placed; a flight with none left is *unplaced*, with the
flights that block it. It is the comparison, the solver's hint and the fallback.

CP-SAT. Variables: ``delay_{id}`` (integer steps), ``layer_{id}_{k}`` (one boolean per
option k) and ``unplaced_{id}``; exactly one of the option booleans or ``unplaced``. A row
between two free flights becomes "both options chosen => d_b - d_a <= kmin - 1 or >=
kmax + 1" (a boolean picks the side; one-sided or a plain clause when a side is out of the
delay range); rows against fixed flights become the allowed delay domain of each option
(``delay_{id}_{k}``, linked to ``delay_{id}`` when option k is chosen). Objective:
priority-weighted delay + small priority-weighted penalties for layer or route changes + a
large penalty for unplaced flights.

Search (a rolling horizon over the FCFS plan): the incumbent starts as the FCFS plan,
which is conflict-free. Flights are taken in windows of ``window_flights`` in departure
order; the other flights stay fixed at the incumbent. Inside a window, rows between free
flights are added lazily: start from each flight's best option given only the fixed
flights, add the flight pairs whose rows are violated, solve each connected component of
those pairs separately (hinted with the incumbent, which satisfies every row), re-check,
repeat until no row is violated. The window's plan replaces the incumbent when it is no
worse. A time limit returns the best found (FEASIBLE components accepted; a component with
no solution keeps the incumbent; windows not reached keep FCFS). Every row is re-checked
at the end, and the independent verifier (:mod:`planner.verify`) always re-checks the
result; if either refuses, the FCFS plan is returned.

Incremental mode: :class:`AcceptedIndex` keeps accepted segments in space-time buckets
(cell x z-slice x time bucket); :func:`place` gives a new flight its earliest
conflict-free option against the accepted segments near it (they stay fixed), so a
booking costs what the traffic near it costs, not what the fleet does;
:meth:`AcceptedIndex.cancel` frees the space.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field

import numpy as np
from numba import njit
from ortools.sat.python import cp_model

from skytwin.airspace._jit import JIT
from skytwin.planner.conflicts import (
    ConflictInputError,
    SegmentTable,
    Separation,
    _count_entries,
    _fill_entries,
    candidate_pairs,
    cross_pairs,
    pack_segments,
    shift_intervals,
)
from skytwin.planner.trajectory import Trajectory

__all__ = [
    "AcceptedIndex",
    "Choice",
    "DeconflictOptions",
    "Placement",
    "Problem",
    "Resolution",
    "SolveParams",
    "build_problem",
    "deconflict",
    "fcfs",
    "place",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeconflictOptions:
    """What a flight may change, and what changes cost.

    Attributes
    ----------
    delay_step_s : float
        Departure delays are multiples of this [s] (default 10).
    layer_shifts : tuple of int
        Cruise-layer shifts offered, in FCFS preference order (default 0, +1, -1, +2).
    layer_spacing_m : float
        Height of one layer [m] (default 10, = the vertical minimum).
    min_cruise_m, max_cruise_m : float
        Allowed cruise altitudes [m] (default 30..120, the usual 120 m drone ceiling).
    layer_penalty_s, route_penalty_s : float
        Cost of a layer change or of an alternate route, in seconds of delay (weighted
        by the flight's priority like its delay).
    unplaced_penalty_s : float
        Cost of leaving a flight unplaced, per unit of priority.
    """

    delay_step_s: float = 10.0
    layer_shifts: tuple = (0, 1, -1, 2)
    layer_spacing_m: float = 10.0
    min_cruise_m: float = 30.0
    max_cruise_m: float = 120.0
    layer_penalty_s: float = 5.0
    route_penalty_s: float = 5.0
    unplaced_penalty_s: float = 7200.0

    def __post_init__(self):
        if not self.delay_step_s > 0:
            raise ConflictInputError(f"delay_step_s must be > 0, got {self.delay_step_s}")
        if 0 not in self.layer_shifts:
            raise ConflictInputError("layer_shifts must contain 0 (the flight's own layer)")


@dataclass(frozen=True)
class SolveParams:
    """CP-SAT parameters, as data.

    ``max_time_in_seconds`` is the total budget (problem building included) over all
    windows; ``window_flights`` flights (in departure order) are re-optimised at a time
    while the others stay fixed; up to ``max_passes`` passes (shifted, then larger
    windows) run while time remains and the previous pass improved.
    """

    max_time_in_seconds: float = 45.0
    num_workers: int = 2
    random_seed: int = 0
    log_search_progress: bool = False
    window_flights: int = 200
    max_passes: int = 8


@dataclass(frozen=True)
class Choice:
    """One flight's answer: ``delay_s`` later, cruise ``layer_shift`` layers, ``route``
    (0 = primary, k = k-th alternate)."""

    flight_id: str
    delay_s: float
    layer_shift: int
    route: int


@dataclass
class Resolution:
    """Result of :func:`deconflict` or :func:`fcfs`.

    Attributes
    ----------
    choices : dict flight_id -> Choice (placed flights)
    unplaced : dict flight_id -> str (why)
    trajectories : list of Trajectory, the placed flights as they will fly
    status : str
        "OPTIMAL" (every component proven optimal), "FEASIBLE" (a time limit cut the
        search), "FCFS" (the baseline), "FCFS_FALLBACK" (CP-SAT result refused or empty)
    objective : float, priority-weighted delay [s] + penalties
    report : planner.verify.Report or None
    stats : dict
    """

    choices: dict
    unplaced: dict
    trajectories: list
    status: str
    objective: float
    report: object = None
    stats: dict = field(default_factory=dict)


@dataclass
class Problem:
    """Flights, their options, and the precomputed exclusion rows (see module docstring)."""

    flights: list
    sep: Separation
    options: DeconflictOptions
    opt_start: np.ndarray     # (n+1,) int64, options of flight f: opt_start[f]:opt_start[f+1]
    opt_traj: list            # option trajectories (undelayed)
    opt_layer: np.ndarray     # (n_opt,) int64
    opt_route: np.ndarray     # (n_opt,) int64
    max_steps: np.ndarray     # (n,) int64
    rows: np.ndarray          # (r, 6) int64: fa, oa, fb, ob, kmin, kmax (oa, ob global)

    @property
    def n(self) -> int:
        return len(self.flights)


# ----------------------------------------------------------------------------- problem

def _options_of(tr: Trajectory, alts, opts: DeconflictOptions):
    out = []
    routes = [tr, *alts]
    for shift in opts.layer_shifts:
        dz = shift * opts.layer_spacing_m
        for r, route in enumerate(routes):
            cruise = route.xyz_m[1:-1, 2] + dz
            outside = cruise.size and (cruise.min() < opts.min_cruise_m - 1e-9
                                       or cruise.max() > opts.max_cruise_m + 1e-9)
            if outside and shift != 0:
                continue  # the flight's own layer is kept even if filed outside
            out.append((route.shifted(0.0, dz) if dz else route, shift, r))
    return out


@njit(**JIT)
def _merge_rows(rows):
    """Merge overlapping/adjacent intervals of rows sorted by (fa, oa, fb, ob, kmin)."""
    n = rows.shape[0]
    out = np.empty_like(rows)
    m = 0
    for i in range(n):
        if (m > 0 and out[m - 1, 0] == rows[i, 0] and out[m - 1, 1] == rows[i, 1]
                and out[m - 1, 2] == rows[i, 2] and out[m - 1, 3] == rows[i, 3]
                and rows[i, 4] <= out[m - 1, 5] + 1):
            out[m - 1, 5] = max(out[m - 1, 5], rows[i, 5])
        else:
            out[m] = rows[i]
            m += 1
    return out[:m]


def _rows_between(opt_traj, opt_flight, max_steps_of_opt, sep, opts, group=None,
                  segs=None, cell_m=None, n_first=None):
    """Exclusion rows between option trajectories of different groups (see module doc).

    ``segs`` (a :class:`~planner.conflicts.SegmentTable` whose owners index
    ``opt_flight``) replaces packing ``opt_traj``: :func:`place` passes only the
    accepted segments near the new flight, after the new flight's own ``n_first``
    segments: the two groups then (:func:`~planner.conflicts.cross_pairs`), and
    ``group`` is not needed."""
    segs = pack_segments(opt_traj) if segs is None else segs
    step = opts.delay_step_s
    b = sep.time_buffer_s
    max_delay_opt = max_steps_of_opt * step
    pad_lo = np.full(segs.t0.shape[0], 0.5 * b)
    pad_hi = 0.5 * b + max_delay_opt[segs.owner]
    if n_first is not None:
        pi, pj = cross_pairs(segs, n_first, sep, pad_lo, pad_hi, cell_m=cell_m)
    else:
        pi, pj = candidate_pairs(segs, opt_flight if group is None else group, sep,
                                 pad_lo, pad_hi, cell_m=cell_m)
    lo, hi, ok = shift_intervals(segs, pi, pj, sep)
    oa = segs.owner[pi][ok]
    ob = segs.owner[pj][ok]
    lo = lo[ok] - b
    hi = hi[ok] + b
    # forbidden sigma = d_b - d_a in the open (lo, hi): steps k with lo < k*step < hi
    kmin = np.floor(lo / step).astype(np.int64) + 1
    kmax = np.ceil(hi / step).astype(np.int64) - 1
    kmin = np.maximum(kmin, -max_steps_of_opt[oa])
    kmax = np.minimum(kmax, max_steps_of_opt[ob])
    keep = kmin <= kmax
    rows = np.column_stack([opt_flight[oa], oa, opt_flight[ob], ob, kmin, kmax])[keep]
    if rows.shape[0] == 0:
        return np.zeros((0, 6), np.int64)
    # options are numbered flight by flight, so (oa, ob) orders by (fa, oa, fb, ob)
    order = np.lexsort((rows[:, 4], rows[:, 1] * (int(rows[:, 3].max()) + 1) + rows[:, 3]))
    return _merge_rows(np.ascontiguousarray(rows[order]))


def build_problem(flights, alternates=None, sep: Separation | None = None,
                  options: DeconflictOptions | None = None) -> Problem:
    """Options of every flight and the exclusion rows between them.

    Parameters
    ----------
    flights : sequence of Trajectory
        In request order (FCFS order); ids unique.
    alternates : dict flight_id -> list of Trajectory, optional
    sep : Separation, optional
    options : DeconflictOptions, optional

    Raises
    ------
    ConflictInputError
        Repeated ids, a non-Trajectory, a negative max delay, or an alternate whose
        departure differs from its flight's.
    """
    sep = Separation() if sep is None else sep
    opts = DeconflictOptions() if options is None else options
    alternates = alternates or {}
    flights = list(flights)
    ids = [getattr(f, "flight_id", None) for f in flights]
    if len(set(ids)) != len(ids):
        raise ConflictInputError("flight ids must be unique")
    opt_traj, opt_layer, opt_route, opt_flight, starts = [], [], [], [], [0]
    for f, tr in enumerate(flights):
        if not isinstance(tr, Trajectory):
            raise ConflictInputError(f"item {f} is a {type(tr).__name__}, not a Trajectory")
        if not (tr.max_delay_s >= 0 and math.isfinite(tr.max_delay_s)):
            raise ConflictInputError(f"flight {tr.flight_id}: max_delay_s must be a finite "
                                     f"number >= 0, got {tr.max_delay_s}")
        alts = list(alternates.get(tr.flight_id, ()))
        for a in alts:
            if not isinstance(a, Trajectory):
                raise ConflictInputError(f"flight {tr.flight_id}: alternate is not a "
                                         "Trajectory")
        for traj, shift, r in _options_of(tr, alts, opts):
            opt_traj.append(traj)
            opt_layer.append(shift)
            opt_route.append(r)
            opt_flight.append(f)
        starts.append(len(opt_traj))
    max_steps = np.array([int(math.floor(f.max_delay_s / opts.delay_step_s + 1e-9))
                          for f in flights], np.int64)
    opt_flight = np.asarray(opt_flight, np.int64)
    rows = (_rows_between(opt_traj, opt_flight, max_steps[opt_flight], sep, opts)
            if flights else np.zeros((0, 6), np.int64))
    return Problem(flights, sep, opts, np.asarray(starts, np.int64), opt_traj,
                   np.asarray(opt_layer, np.int64), np.asarray(opt_route, np.int64),
                   max_steps, rows)


# ----------------------------------------------------------------------------- FCFS

@njit(**JIT)
def _fcfs(order, opt_start, max_steps, rows, adj_ptr, adj_row, chosen_opt, chosen_d):
    """First come, first served over the exclusion rows.

    order : (n,) int64 flight order; rows : (r, 6) int64; adj_ptr/adj_row: CSR of the rows
    touching each flight. chosen_opt (global option, -1 = unplaced) and chosen_d (steps)
    are filled in place.
    """
    for f in order:
        nopt = opt_start[f + 1] - opt_start[f]
        k = max_steps[f]
        feas = np.ones((nopt, k + 1), np.bool_)
        for q in range(adj_ptr[f], adj_ptr[f + 1]):
            r = adj_row[q]
            if rows[r, 0] == f:
                g = rows[r, 2]
                if chosen_opt[g] != rows[r, 3]:
                    continue
                lo = chosen_d[g] - rows[r, 5]
                hi = chosen_d[g] - rows[r, 4]
                o = rows[r, 1] - opt_start[f]
            else:
                g = rows[r, 0]
                if chosen_opt[g] != rows[r, 1]:
                    continue
                lo = chosen_d[g] + rows[r, 4]
                hi = chosen_d[g] + rows[r, 5]
                o = rows[r, 3] - opt_start[f]
            lo = max(lo, 0)
            hi = min(hi, k)
            for d in range(lo, hi + 1):
                feas[o, d] = False
        done = False
        for d in range(k + 1):
            for o in range(nopt):
                if feas[o, d]:
                    chosen_opt[f] = opt_start[f] + o
                    chosen_d[f] = d
                    done = True
                    break
            if done:
                break


def _adjacency(n, rows):
    fl = np.concatenate([rows[:, 0], rows[:, 2]])
    rid = np.concatenate([np.arange(rows.shape[0]), np.arange(rows.shape[0])])
    order = np.argsort(fl, kind="stable")
    ptr = np.zeros(n + 1, np.int64)
    np.add.at(ptr, fl + 1, 1)
    return np.cumsum(ptr), rid[order].astype(np.int64)


def _violated(problem, chosen_opt, chosen_d):
    r = problem.rows
    if r.shape[0] == 0:
        return np.zeros(0, bool)
    diff = chosen_d[r[:, 2]] - chosen_d[r[:, 0]]
    return ((chosen_opt[r[:, 0]] == r[:, 1]) & (chosen_opt[r[:, 2]] == r[:, 3])
            & (diff >= r[:, 4]) & (diff <= r[:, 5]))


def _unplaced_reason(problem, f, chosen_opt, adj):
    ptr, rid = adj
    blockers = set()
    for q in range(ptr[f], ptr[f + 1]):
        row = problem.rows[rid[q]]
        g = row[2] if row[0] == f else row[0]
        if chosen_opt[g] >= 0:
            blockers.add(problem.flights[g].flight_id)
    fl = problem.flights[f]
    n_opt = problem.opt_start[f + 1] - problem.opt_start[f]
    return (f"no conflict-free option: every delay 0..{problem.max_steps[f] * problem.options.delay_step_s:g} s "
            f"x {n_opt} layer/route options conflicts with accepted flights "
            f"{sorted(blockers)[:10]}{' ...' if len(blockers) > 10 else ''}"
            + (f" (max_delay_s={fl.max_delay_s:g})" if fl.max_delay_s < 60 else ""))


def _fcfs_solution(problem, adj):
    n = problem.n
    chosen_opt = np.full(n, -1, np.int64)
    chosen_d = np.zeros(n, np.int64)
    _fcfs(np.arange(n, dtype=np.int64), problem.opt_start, problem.max_steps, problem.rows,
          adj[0], adj[1], chosen_opt, chosen_d)
    return chosen_opt, chosen_d


def _objective(problem, chosen_opt, chosen_d):
    o = problem.options
    total = 0.0
    for f, fl in enumerate(problem.flights):
        if chosen_opt[f] < 0:
            total += fl.priority * o.unplaced_penalty_s
            continue
        total += fl.priority * chosen_d[f] * o.delay_step_s
        total += fl.priority * o.layer_penalty_s * (problem.opt_layer[chosen_opt[f]] != 0)
        total += fl.priority * o.route_penalty_s * (problem.opt_route[chosen_opt[f]] != 0)
    return float(total)


def _resolution(problem, chosen_opt, chosen_d, status, adj, stats, verify_result=True):
    from skytwin.planner.verify import verify  # independent checker, imported lazily

    choices, unplaced, trajs = {}, {}, []
    step = problem.options.delay_step_s
    for f, fl in enumerate(problem.flights):
        o = chosen_opt[f]
        if o < 0:
            unplaced[fl.flight_id] = _unplaced_reason(problem, f, chosen_opt, adj)
            continue
        d = float(chosen_d[f] * step)
        choices[fl.flight_id] = Choice(fl.flight_id, d, int(problem.opt_layer[o]),
                                       int(problem.opt_route[o]))
        tr = problem.opt_traj[o]
        trajs.append(Trajectory(fl.flight_id, tr.xyz_m, tr.t_s + d, fl.priority,
                                fl.max_delay_s, dict(fl.meta)))
    res = Resolution(choices, unplaced, trajs, status,
                     _objective(problem, chosen_opt, chosen_d), None, stats)
    if verify_result:
        res.report = verify(trajs, problem.sep, delays_s={k: c.delay_s
                                                          for k, c in choices.items()},
                            max_delay_s={f.flight_id: f.max_delay_s
                                         for f in problem.flights})
        # the band is the rule for layer changes (_options_of keeps a flight's own layer
        # even when it was filed outside the band): check it on moved flights only, or
        # a filed route over high ground would turn every CP-SAT plan into FCFS_FALLBACK
        band = (problem.options.min_cruise_m, problem.options.max_cruise_m)
        for tr in trajs:
            if choices[tr.flight_id].layer_shift != 0:
                res.report.violations.extend(
                    verify([tr], problem.sep, cruise_band_m=band).violations)
    return res


def fcfs(flights, alternates=None, sep: Separation | None = None,
         options: DeconflictOptions | None = None, problem: Problem | None = None,
         ) -> Resolution:
    """First-come-first-served baseline (see module docstring), verified.

    Examples
    --------
    >>> from skytwin.planner.trajectory import Trajectory
    >>> a = Trajectory("a", [[0, 0, 0], [0, 0, 60], [600, 0, 60], [600, 0, 0]],
    ...                [0, 20, 70, 100])
    >>> b = Trajectory("b", [[600, 0, 0], [600, 0, 60], [0, 0, 60], [0, 0, 0]],
    ...                [0, 20, 70, 100])
    >>> r = fcfs([a, b])
    >>> r.choices["b"].delay_s, r.choices["b"].layer_shift, len(r.report.residual_conflicts)
    (0.0, 1, 0)
    """
    t = time.perf_counter()
    problem = problem or build_problem(flights, alternates, sep, options)
    adj = _adjacency(problem.n, problem.rows)
    chosen_opt, chosen_d = _fcfs_solution(problem, adj)
    return _resolution(problem, chosen_opt, chosen_d, "FCFS", adj,
                       {"solve_s": time.perf_counter() - t, "rows": int(problem.rows.shape[0])})


# ----------------------------------------------------------------------------- CP-SAT

def _components(n, pairs):
    parent = np.arange(n)

    def find(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in pairs:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[ra] = rb
    comp: dict[int, list] = {}
    for a, b in pairs:
        comp.setdefault(find(a), set()).update((a, b))
    return [sorted(c) for c in comp.values()]


def _best_alone(problem, f, forbidden):
    """Cheapest (option, delay) of flight f given only the fixed flights' intervals."""
    o = problem.options
    fl = problem.flights[f]
    k = int(problem.max_steps[f])
    best = (math.inf, -1, 0)
    for g in range(problem.opt_start[f], problem.opt_start[f + 1]):
        d = 0
        for lo, hi in forbidden.get(g, ()):
            if lo <= d <= hi:
                d = hi + 1
        if d > k:
            continue
        cost = fl.priority * (d * o.delay_step_s
                              + o.layer_penalty_s * (problem.opt_layer[g] != 0)
                              + o.route_penalty_s * (problem.opt_route[g] != 0))
        if cost < best[0]:
            best = (cost, g, d)
    return best[1], best[2]


def _objective_of(problem, idx, chosen_opt, chosen_d):
    o = problem.options
    total = 0.0
    for f in idx:
        fl = problem.flights[f]
        g = chosen_opt[f]
        if g < 0:
            total += fl.priority * o.unplaced_penalty_s
            continue
        total += fl.priority * (chosen_d[f] * o.delay_step_s
                                + o.layer_penalty_s * (problem.opt_layer[g] != 0)
                                + o.route_penalty_s * (problem.opt_route[g] != 0))
    return total


def _window_rows(problem, adj, free, cur_opt, cur_d):
    """Rows touching the free flights: (pairwise rows among free flights, and for each
    (free flight, option) the merged forbidden delay intervals due to fixed flights)."""
    ptr, rid = adj
    idx = np.concatenate([rid[ptr[f]:ptr[f + 1]] for f in free]) if len(free) else \
        np.zeros(0, np.int64)
    idx = np.unique(idx)
    r = problem.rows[idx]
    is_free = np.zeros(problem.n, bool)
    is_free[free] = True
    fa_free, fb_free = is_free[r[:, 0]], is_free[r[:, 2]]
    pair_rows = r[fa_free & fb_free]
    # fixed b: forbidden d_a in [d_b - kmax, d_b - kmin] when a flies oa and b flies ob
    m1 = fa_free & ~fb_free & (cur_opt[r[:, 2]] == r[:, 3])
    m2 = ~fa_free & fb_free & (cur_opt[r[:, 0]] == r[:, 1])
    f_opt = np.concatenate([r[m1, 1], r[m2, 3]])
    f_lo = np.concatenate([cur_d[r[m1, 2]] - r[m1, 5], cur_d[r[m2, 0]] + r[m2, 4]])
    f_hi = np.concatenate([cur_d[r[m1, 2]] - r[m1, 4], cur_d[r[m2, 0]] + r[m2, 5]])
    forbidden: dict[int, list] = {}
    order = np.lexsort((f_lo, f_opt))
    for o, lo, hi in zip(f_opt[order].tolist(), f_lo[order].tolist(), f_hi[order].tolist()):
        lst = forbidden.setdefault(o, [])
        if lst and lo <= lst[-1][1] + 1:
            lst[-1][1] = max(lst[-1][1], hi)
        else:
            lst.append([lo, hi])
    return pair_rows, forbidden


def build_model(problem: Problem, flights_idx, pair_rows, forbidden, hint_opt, hint_d):
    """CP-SAT model of free flights: model, variables, constraints, objective, hint.

    ``pair_rows`` are exclusion rows between free flights; ``forbidden`` maps a global
    option to merged delay intervals (steps) that fixed flights forbid for it. Returns
    ``(model, delay_vars, opt_vars, unplaced_vars)`` keyed by flight index.
    """
    o = problem.options
    model = cp_model.CpModel()
    delay, optv, unpl = {}, {}, {}
    for f in flights_idx:
        fid = problem.flights[f].flight_id
        k = int(problem.max_steps[f])
        delay[f] = model.new_int_var(0, k, f"delay_{fid}")
        optv[f] = {}
        for j, g in enumerate(range(problem.opt_start[f], problem.opt_start[f + 1])):
            x = model.new_bool_var(f"layer_{fid}_{j}")
            optv[f][g] = x
            allowed = cp_model.Domain(0, k)
            for lo, hi in forbidden.get(g, ()):
                allowed = allowed.intersection_with(
                    cp_model.Domain(max(lo, 0), min(hi, k)).complement())
            if allowed.is_empty():
                model.add(x == 0)
            elif allowed.size() < k + 1:
                dv = model.new_int_var_from_domain(allowed, f"delay_{fid}_{j}")
                model.add(delay[f] == dv).only_enforce_if(x)
        unpl[f] = model.new_bool_var(f"unplaced_{fid}")
        model.add_exactly_one([*optv[f].values(), unpl[f]])
    for fa, oa, fb, ob, kmin, kmax in pair_rows:
        xa, xb = optv[fa][oa], optv[fb][ob]
        diff = delay[fb] - delay[fa]
        left = kmin - 1 >= -problem.max_steps[fa]
        right = kmax + 1 <= problem.max_steps[fb]
        if left and right:
            y = model.new_bool_var(f"before_{fa}_{oa}_{fb}_{ob}_{kmin}")
            model.add(diff <= int(kmin) - 1).only_enforce_if([xa, xb, y])
            model.add(diff >= int(kmax) + 1).only_enforce_if([xa, xb, ~y])
        elif left:
            model.add(diff <= int(kmin) - 1).only_enforce_if([xa, xb])
        elif right:
            model.add(diff >= int(kmax) + 1).only_enforce_if([xa, xb])
        else:
            model.add_bool_or([~xa, ~xb])
    # objective in tenths of priority-1 seconds
    terms = []
    for f in flights_idx:
        fl = problem.flights[f]
        terms.append(int(round(10 * fl.priority * o.delay_step_s)) * delay[f])
        terms.append(int(round(10 * fl.priority * o.unplaced_penalty_s)) * unpl[f])
        for g, x in optv[f].items():
            pen = (o.layer_penalty_s * (problem.opt_layer[g] != 0)
                   + o.route_penalty_s * (problem.opt_route[g] != 0))
            if pen:
                terms.append(int(round(10 * fl.priority * pen)) * x)
    model.minimize(sum(terms))
    for f in flights_idx:
        model.add_hint(delay[f], int(hint_d[f]))
        model.add_hint(unpl[f], bool(hint_opt[f] < 0))
        for g, x in optv[f].items():
            model.add_hint(x, bool(hint_opt[f] == g))
    return model, delay, optv, unpl


def deconflict(flights, alternates=None, sep: Separation | None = None,
               options: DeconflictOptions | None = None,
               params: SolveParams | None = None, problem: Problem | None = None,
               ) -> Resolution:
    """Resolve every conflict with CP-SAT (see module docstring); verified.

    Parameters
    ----------
    flights : sequence of Trajectory, in request order
    alternates : dict flight_id -> list of Trajectory, optional
    sep, options, params : optional configuration
    problem : Problem, optional
        Reuse a :func:`build_problem` result.

    Returns
    -------
    Resolution
        ``status`` "OPTIMAL" when every window component was proven optimal (with one
        window, the whole fleet), "FEASIBLE" when a time limit cut one, "FCFS_FALLBACK"
        when CP-SAT found nothing better than the FCFS plan or the verifier refused.

    Examples
    --------
    >>> from skytwin.planner.trajectory import Trajectory
    >>> a = Trajectory("a", [[0, 0, 0], [0, 0, 60], [600, 0, 60], [600, 0, 0]],
    ...                [0, 20, 70, 100], priority=1.0)
    >>> b = Trajectory("b", [[600, 0, 0], [600, 0, 60], [0, 0, 60], [0, 0, 0]],
    ...                [0, 20, 70, 100], priority=5.0)
    >>> r = deconflict([a, b])
    >>> r.status, r.choices["a"].layer_shift != 0, r.choices["b"].layer_shift  # b matters
    ('OPTIMAL', True, 0)
    """
    t_start = time.perf_counter()
    params = params or SolveParams()
    problem = problem or build_problem(flights, alternates, sep, options)
    t_built = time.perf_counter()
    n = problem.n
    adj = _adjacency(n, problem.rows)
    fcfs_opt, fcfs_d = _fcfs_solution(problem, adj)
    cur_opt, cur_d = fcfs_opt.copy(), fcfs_d.copy()
    t_fcfs = time.perf_counter()
    deadline = t_start + params.max_time_in_seconds
    # windows of flights in departure order; the rest stays fixed at the incumbent
    dep = np.array([f.t_start_s for f in problem.flights])
    order = np.argsort(dep, kind="stable")
    w0 = max(params.window_flights, 1)
    status_all = "OPTIMAL"
    n_models = 0
    improved = False
    windows_done = 0
    passes = 0
    windows: list = []
    # passes: windows of w0, then shifted by half a window, then twice as large, ... while
    # time remains and the previous pass still improved the incumbent
    while time.perf_counter() < deadline and passes < params.max_passes:
        size = w0 * 2 ** (passes // 2)
        offset = (size // 2) * (passes % 2)
        cuts = [0, *range(offset or size, n, size), n]
        windows = [order[a:b] for a, b in zip(cuts[:-1], cuts[1:]) if b > a]
        if passes > 0 and (n <= w0 or (size >= 2 * n and offset == 0)):
            break  # one window held every flight, or windows stopped growing usefully
        before = _objective_of(problem, range(n), cur_opt, cur_d)
        passes += 1
        for wi, win in enumerate(windows):
            if time.perf_counter() > deadline:
                status_all = "FEASIBLE"
                break
            win = [int(f) for f in win]
            pair_rows, forbidden = _window_rows(problem, adj, win, cur_opt, cur_d)
            # start the window from the nominal plan, where the fixed flights allow it
            sol_opt, sol_d = cur_opt.copy(), cur_d.copy()
            for f in win:
                sol_opt[f], sol_d[f] = _best_alone(problem, f, forbidden)
            active: set = set()
            ok = False
            t_win = time.perf_counter()
            lazy_rounds = 0
            while time.perf_counter() < deadline:
                lazy_rounds += 1
                r = pair_rows
                diff = sol_d[r[:, 2]] - sol_d[r[:, 0]]
                viol = ((sol_opt[r[:, 0]] == r[:, 1]) & (sol_opt[r[:, 2]] == r[:, 3])
                        & (diff >= r[:, 4]) & (diff <= r[:, 5]))
                if not viol.any():
                    ok = True
                    break
                new_pairs = set(zip(r[viol, 0].tolist(), r[viol, 2].tolist()))
                active |= new_pairs
                comps = _components(n, active)
                touched = {f for p_ in new_pairs for f in p_}
                code = r[:, 0] * n + r[:, 2]
                act = np.array(sorted(active), np.int64)
                in_act = np.isin(code, act[:, 0] * n + act[:, 1])
                for c in comps:
                    if not touched.intersection(c):
                        continue
                    cset = np.zeros(n, bool)
                    cset[c] = True
                    crow = r[in_act & cset[r[:, 0]]].tolist()
                    remaining = deadline - time.perf_counter()
                    if remaining <= 0.01:
                        break
                    model, delay, optv, _ = build_model(problem, c, crow, forbidden,
                                                        cur_opt, cur_d)
                    solver = cp_model.CpSolver()
                    left = sum(len(x) for x in windows[wi:])
                    solver.parameters.max_time_in_seconds = max(
                        0.05, min(remaining, 1.5 * remaining * len(c) / max(1, left)))
                    solver.parameters.num_workers = params.num_workers
                    solver.parameters.random_seed = params.random_seed
                    solver.parameters.log_search_progress = params.log_search_progress
                    st = solver.solve(model)
                    n_models += 1
                    log.debug("window %d component of %d flights, %d rows: %s in %.2f s", wi,
                              len(c), len(crow), solver.status_name(st), solver.wall_time)
                    if st == cp_model.FEASIBLE:
                        status_all = "FEASIBLE"
                    if st not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
                        status_all = "FEASIBLE"
                        for f in c:  # keep the incumbent (hint) for this component
                            sol_opt[f], sol_d[f] = cur_opt[f], cur_d[f]
                        continue
                    for f in c:
                        sol_d[f] = solver.value(delay[f])
                        sol_opt[f] = -1
                        for g, x in optv[f].items():
                            if solver.boolean_value(x):
                                sol_opt[f] = g
            log.debug("window %d: %d flights, %d rounds, %.2f s, settled=%s", wi, len(win),
                      lazy_rounds, time.perf_counter() - t_win, ok)
            windows_done += 1
            if ok and _objective_of(problem, win, sol_opt, sol_d) <= \
                    _objective_of(problem, win, cur_opt, cur_d):
                cur_opt[win], cur_d[win] = sol_opt[win], sol_d[win]
                improved = True
            elif not ok:
                status_all = "FEASIBLE"
        if _objective_of(problem, range(n), cur_opt, cur_d) >= before - 1e-9:
            break
    t_end = time.perf_counter()
    stats = {"build_s": t_built - t_start, "fcfs_s": t_fcfs - t_built,
             "cpsat_s": t_end - t_fcfs, "solve_s": t_end - t_start,
             "passes": passes, "windows_solved": windows_done, "models": n_models,
             "rows": int(problem.rows.shape[0])}
    if not improved or _violated(problem, cur_opt, cur_d).any():
        return _resolution(problem, fcfs_opt, fcfs_d, "FCFS_FALLBACK", adj, stats)
    res = _resolution(problem, cur_opt, cur_d, status_all, adj, stats)
    if res.report is not None and not res.report.ok:
        log.error("verifier rejected the CP-SAT plan; using the FCFS plan")
        return _resolution(problem, fcfs_opt, fcfs_d, "FCFS_FALLBACK", adj, stats)
    return res


# ----------------------------------------------------------------------------- incremental

@dataclass(frozen=True)
class Placement:
    """Answer of :func:`place`: a ``choice`` and its ``trajectory``, or ``reason``."""

    choice: Choice | None
    trajectory: Trajectory | None
    reason: str = ""


BUCKET_S = 120.0
"""Time bucket of :class:`AcceptedIndex` [s]: a segment piece (half a cell, ~5 s of
flight) meets one or two; a new flight with a 120 s delay budget meets two or three."""


MAX_SPAN = 64
"""A piece whose window meets more buckets than this (a flight lasting hours or years)
is entered under its cell alone (:class:`AcceptedIndex`)."""


@njit(**JIT)
def _query_keys(key, tlo, thi, bucket_s, max_span):
    """The keys a query's pieces meet (:meth:`AcceptedIndex._near_gids`), distinct:
    ``(short_key, short_bucket, short_cells, long_cells)``. A piece (``key``: its cell
    and z-slice, ``[tlo, thi]``: its grown window) whose window meets at most
    ``max_span`` buckets of ``bucket_s`` gives its ``(key, bucket)`` pairs (sorted by
    key, then bucket) and its key among ``short_cells``; a longer one, its key among
    ``long_cells``. The same keys as expanding every piece (:meth:`AcceptedIndex.
    _entry_arrays`) and de-duplicating, without the expansion: per key, the pieces'
    bucket ranges are swept in order of their first bucket."""
    n = key.size
    b0 = np.empty(n, np.int64)
    b1 = np.empty(n, np.int64)
    is_long = np.zeros(n, np.bool_)
    total = 0
    for e in range(n):
        f0 = math.floor(tlo[e] / bucket_s)
        f1 = math.floor(thi[e] / bucket_s)
        if f1 - f0 >= max_span:
            is_long[e] = True
        else:
            b0[e] = f0
            b1[e] = f1
            total += f1 - f0 + 1
    order = np.argsort(key, kind="mergesort")
    out_k = np.empty(total, np.int64)
    out_b = np.empty(total, np.int64)
    short_cells = np.empty(n, np.int64)
    long_cells = np.empty(n, np.int64)
    m = 0
    ns = 0
    nl = 0
    i = 0
    while i < n:
        k = key[order[i]]
        j = i
        while j < n and key[order[j]] == k:
            j += 1
        run = order[i:j]
        short = run[~is_long[run]]
        if short.size < run.size:
            long_cells[nl] = k
            nl += 1
        if short.size:
            short_cells[ns] = k
            ns += 1
            short = short[np.argsort(b0[short], kind="mergesort")]
            last = b0[short[0]] - 1
            for e in short:
                for b in range(max(b0[e], last + 1), b1[e] + 1):
                    out_k[m] = k
                    out_b[m] = b
                    m += 1
                last = max(last, b1[e])
        i = j
    return out_k[:m], out_b[:m], short_cells[:ns], long_cells[:nl]


class AcceptedIndex:
    """Accepted (fixed) trajectories in space-time buckets, for :func:`place`.

    Every accepted segment is entered, piece by piece, exactly as
    :func:`planner.conflicts.candidate_pairs` enters it (pieces of half a cell, each
    piece's box grown by ``H/2`` and ``V/2`` into cells of ``cell_m`` x z-slices of
    ``V``, its time window grown by ``b/2``), under every ``(cell, z-slice, time
    bucket)`` key its window meets (buckets of ``bucket_s``). A query enters the new
    flight's option segments the same way, their windows also grown by the delay they
    may still take, and returns the accepted segments sharing a key. A piece whose
    window meets more than :data:`MAX_SPAN` buckets (a flight lasting years, from an
    old store) is entered under its cell alone and meets every query piece in that
    cell, at any time; a query piece that long meets every accepted piece in its
    cell: the bucket count never grows with a flight's duration.

    Conservative: if an accepted segment and an option segment lose separation at a
    delay within the budget (and a timing error within ``b``), the detector's
    argument (:mod:`planner.conflicts`, step 2) gives two pieces sharing a
    (cell, z-slice) whose grown windows overlap; a time in the overlap lies in a
    bucket of both, so they share a key. Hence :func:`place` on the returned segments
    forbids exactly the delays it forbids with the whole accepted set, and the cost of
    a booking follows the traffic near it in space and time, not the fleet's size.

    Parameters
    ----------
    sep : Separation, optional
    options : DeconflictOptions, optional
    cell_m : float, optional
        Bucket size (default ``max(4 H, 100 m)``, the detector's).
    bucket_s : float, optional
        Time bucket [s] (default :data:`BUCKET_S`).
    """

    def __init__(self, sep: Separation | None = None,
                 options: DeconflictOptions | None = None, cell_m: float | None = None,
                 bucket_s: float = BUCKET_S):
        self.sep = Separation() if sep is None else sep
        self.options = DeconflictOptions() if options is None else options
        self.cell_m = float(cell_m or max(4.0 * self.sep.horizontal_m, 100.0))
        if self.cell_m < self.sep.horizontal_m:
            raise ConflictInputError(f"cell_m ({self.cell_m}) must be >= horizontal_m "
                                     f"({self.sep.horizontal_m})")
        if not bucket_s > 0:
            raise ConflictInputError(f"bucket_s must be > 0, got {bucket_s}")
        self.bucket_s = float(bucket_s)
        self._traj: dict[str, Trajectory] = {}
        self._segs: dict[str, SegmentTable] = {}   # flight id -> its packed segments
        self._gid0: dict[str, int] = {}            # flight id -> first segment id
        self._keys_of: dict[str, set] = {}         # flight id -> its keys
        self._bucket: dict[tuple, set] = {}        # (cell, bucket) -> segment ids
        self._long: dict[int, set] = {}            # cell -> ids with long windows
        self._cell: dict[int, set] = {}            # cell -> every id entered in it
        self._gid_flight: list[str] = []           # segment id -> flight id
        self._next_gid = 0
        # every segment ever accepted, by segment id (grown by doubling): near_segments
        # gathers with one fancy index instead of a loop over flights
        self._seg_xyz = np.empty((0, 6))           # p0 | p1
        self._seg_t = np.empty((0, 2))             # t0, t1
        # (trajectory, its packed segments, their undelayed pieces and entries) of the
        # last trajectory looked up or accepted alone without delay (_undelayed_entries)
        self._last_entries = None

    def __len__(self):
        return len(self._traj)

    def __contains__(self, flight_id):
        return flight_id in self._traj

    def _entries(self, segs, pad_hi_s):
        """:meth:`_entry_arrays` with the short keys as ``(cell and z-slice, time
        bucket)`` tuples and the long cells as a list."""
        key, bk, sseg, long_cells, lseg = self._entry_arrays(segs, pad_hi_s)
        return zip(key.tolist(), bk.tolist()), sseg, long_cells.tolist(), lseg

    def _pieces(self, segs, pad_hi_s):
        """Every piece of ``segs`` in every (cell, z-slice) its grown box meets (class
        docstring): ``(key, tlo, thi, seg)``, the key of the cell and z-slice, the
        piece's time window grown by ``b/2`` (and ``pad_hi_s`` late), its segment."""
        hh, hv, sl = 0.5 * self.sep.horizontal_m, 0.5 * self.sep.vertical_m, \
            float(self.sep.vertical_m)
        m = segs.t0.shape[0]
        n = _count_entries(segs.p0, segs.p1, self.cell_m, hh, sl, hv)
        key = np.empty(n, np.int64)
        tmp = [np.empty(n) for _ in range(4)]
        seg = np.empty(n, np.int64)
        half_b = np.full(m, 0.5 * self.sep.time_buffer_s)
        _fill_entries(segs.p0, segs.p1, segs.t0, segs.t1, half_b,
                      half_b + np.asarray(pad_hi_s, np.float64), self.cell_m, hh, sl, hv,
                      key, *tmp, seg)
        return key, tmp[0], tmp[1], seg

    def _entry_arrays(self, segs, pad_hi_s):
        """Keys of every piece of ``segs`` (class docstring): ``(short, short_seg,
        long_cells, long_seg)``: ``short`` the ``(cell and z-slice, time bucket)``
        keys of pieces whose window meets at most :data:`MAX_SPAN` buckets, with their
        segment; ``long_cells`` the cells of the others (a piece of a flight lasting
        years), with theirs. ``pad_hi_s`` (per segment) is added to the late side of
        each window, besides ``b/2`` on both sides. As arrays: ``(short_cell,
        short_bucket, short_seg, long_cells, long_seg)``, all int64."""
        return self._expand(self._pieces(segs, pad_hi_s))

    def _expand(self, pieces):
        """:meth:`_entry_arrays` of the :meth:`_pieces` ``pieces``."""
        key, tlo, thi, seg = pieces
        b0 = np.floor(tlo / self.bucket_s)
        b1 = np.floor(thi / self.bucket_s)
        long_ = (b1 - b0) >= MAX_SPAN
        sh = np.flatnonzero(~long_)
        b0 = b0[sh].astype(np.int64)
        cnt = b1[sh].astype(np.int64) - b0 + 1
        rep = np.repeat(sh, cnt)
        bk = np.repeat(b0, cnt) + (np.arange(rep.size) - np.repeat(np.cumsum(cnt) - cnt, cnt))
        return key[rep], bk, seg[rep], key[long_], seg[long_]

    def _undelayed_entries(self, trajectory):
        """``pack_segments([trajectory])``, its :meth:`_pieces` without delay and their
        :meth:`_entry_arrays`, computed once for the same trajectory object: a booking
        looks its placed trajectory up (``near(..., max_delay_s=0)``, for the verifier;
        the pieces) and then accepts it (the entries). One slot, checked by identity."""
        last = self._last_entries
        if last is not None and last[0] is trajectory:
            return last[1:]
        segs = pack_segments([trajectory])
        pieces = self._pieces(segs, np.zeros(segs.t0.shape[0]))
        self._last_entries = (trajectory, segs, pieces, self._expand(pieces))
        return self._last_entries[1:]

    def accept(self, trajectory: Trajectory) -> None:
        """Add a trajectory as flown (delays already applied)."""
        fid = trajectory.flight_id
        if fid in self._traj:
            raise ConflictInputError(f"flight {fid} is already accepted")
        if not isinstance(trajectory, Trajectory):   # as pack_segments refuses it
            pack_segments([trajectory])
        segs, _, (key, bk, sseg, long_arr, lseg) = self._undelayed_entries(trajectory)
        short, long_cells = zip(key.tolist(), bk.tolist()), long_arr.tolist()
        g0 = self._next_gid
        m = segs.t0.shape[0]
        self._next_gid += m
        self._gid_flight.extend([fid] * m)
        if self._next_gid > self._seg_t.shape[0]:
            cap = max(1024, 2 * self._next_gid)
            xyz, tt = np.empty((cap, 6)), np.empty((cap, 2))
            xyz[:g0], tt[:g0] = self._seg_xyz[:g0], self._seg_t[:g0]
            self._seg_xyz, self._seg_t = xyz, tt
        self._seg_xyz[g0:g0 + m, :3] = segs.p0
        self._seg_xyz[g0:g0 + m, 3:] = segs.p1
        self._seg_t[g0:g0 + m, 0] = segs.t0
        self._seg_t[g0:g0 + m, 1] = segs.t1
        mine, mine_long, cells = set(), set(), set()
        for table, keys, gids, kept in ((self._bucket, short, sseg, mine),
                                        (self._long, long_cells, lseg, mine_long)):
            for k, g in zip(keys, (gids + g0).tolist()):
                s = table.get(k)
                if s is None:
                    s = table[k] = set()
                s.add(g)
                kept.add(k)
                c = k[0] if table is self._bucket else k
                s = self._cell.get(c)
                if s is None:
                    s = self._cell[c] = set()
                s.add(g)
                cells.add(c)
        self._traj[fid] = trajectory
        self._segs[fid] = segs
        self._gid0[fid] = g0
        self._keys_of[fid] = (mine, mine_long, cells)

    def cancel(self, flight_id: str) -> None:
        """Remove an accepted flight, freeing its space."""
        if flight_id not in self._traj:
            raise KeyError(f"flight {flight_id} is not accepted")
        g0 = self._gid0.pop(flight_id)
        gids = set(range(g0, g0 + self._segs.pop(flight_id).t0.shape[0]))
        for table, keys in zip((self._bucket, self._long, self._cell),
                               self._keys_of.pop(flight_id), strict=True):
            for k in keys:
                s = table[k]
                s -= gids
                if not s:
                    del table[k]
        del self._traj[flight_id]

    def _near_gids(self, trajs, max_delay_s=None) -> set:
        trajs = list(trajs)
        if not trajs or not self._cell:
            return set()
        if len(trajs) == 1 and isinstance(trajs[0], Trajectory) and (
                trajs[0].max_delay_s if max_delay_s is None else max_delay_s) == 0:
            key, tlo, thi, _ = self._undelayed_entries(trajs[0])[1]
        else:
            segs = pack_segments(trajs)
            delay = np.array([t.max_delay_s if max_delay_s is None else max_delay_s
                              for t in trajs], np.float64)
            key, tlo, thi, _ = self._pieces(segs, delay[segs.owner])
        # the distinct keys, without expanding each piece's window into its buckets
        short_k, short_b, cells, long_cells = _query_keys(key, tlo, thi, self.bucket_s,
                                                         MAX_SPAN)
        # the unions of the sets found under them, iterated in C (map/filter, no Python
        # loop body): short windows meet the same bucket ...
        short = zip(short_k.tolist(), short_b.tolist())
        out: set = set().union(*filter(None, map(self._bucket.get, short)))
        if self._long:                   # ... or a long window in the same cell
            out.update(*filter(None, map(self._long.get, cells.tolist())))
        if long_cells.size:              # a long window: anything in the same cell
            out.update(*filter(None, map(self._cell.get, long_cells.tolist())))
        return out

    def near(self, trajs, max_delay_s: float | None = None) -> list[Trajectory]:
        """Accepted trajectories that may lose separation with one of ``trajs`` (as
        given, or departing up to ``max_delay_s`` later: default each one's
        ``max_delay_s``); sorted by flight id. Conservative (class docstring)."""
        fl = self._gid_flight
        return [self._traj[i] for i in sorted({fl[g] for g in
                                               self._near_gids(trajs, max_delay_s)})]

    def near_segments(self, trajs, max_delay_s: float | None = None):
        """The accepted *segments* that may lose separation with one of ``trajs``
        (see :meth:`near`): ``(flights, SegmentTable)``, the table's ``owner``
        indexing ``flights`` (sorted by flight id)."""
        gids = self._near_gids(trajs, max_delay_s)
        if not gids:
            return [], pack_segments([])
        g = np.fromiter(gids, np.int64, len(gids))
        fl = self._gid_flight
        fids = [fl[i] for i in g.tolist()]
        names = sorted(set(fids))
        num = {f: n for n, f in enumerate(names)}
        own = np.fromiter((num[f] for f in fids), np.int64, len(fids))
        order = np.lexsort((g, own))
        g, own = g[order], own[order]
        xyz, tt = self._seg_xyz[g], self._seg_t[g]
        return [self._traj[f] for f in names], SegmentTable(
            np.ascontiguousarray(xyz[:, :3]), np.ascontiguousarray(xyz[:, 3:]),
            np.ascontiguousarray(tt[:, 0]), np.ascontiguousarray(tt[:, 1]), own)

    @property
    def trajectories(self) -> list[Trajectory]:
        return list(self._traj.values())


def _blocked_delays(rows, n_new, k):
    """``(n_new, k + 1)`` bool: delay step ``d`` of new option ``o`` is forbidden by a
    row of :func:`place` (new options are ``0..n_new-1``, accepted flights, at delay
    0, the others). A row between new option ``a`` and accepted ``b`` forbids ``d_b -
    d_a = -d`` in ``[kmin, kmax]``, i.e. ``d`` in ``[-kmax, -kmin]``; with the new
    option as ``b``, ``d`` in ``[kmin, kmax]``. Marked with a difference array (one
    +1/-1 per row, then a running sum), so the cost does not grow with the rows'
    widths."""
    oa, ob, kmin, kmax = rows[:, 1], rows[:, 3], rows[:, 4], rows[:, 5]
    a_new = (oa < n_new) & (ob >= n_new)
    b_new = (ob < n_new) & (oa >= n_new)
    o = np.concatenate([oa[a_new], ob[b_new]])
    lo = np.clip(np.concatenate([-kmax[a_new], kmin[b_new]]), 0, k + 1)
    hi = np.clip(np.concatenate([1 - kmin[a_new], kmax[b_new] + 1]), 0, k + 1)
    live = lo < hi
    diff = np.zeros((n_new, k + 2), np.int64)
    np.add.at(diff, (o[live], lo[live]), 1)
    np.add.at(diff, (o[live], hi[live]), -1)
    return np.cumsum(diff, axis=1)[:, :k + 1] > 0


def place(new_flight: Trajectory, accepted: AcceptedIndex, alternates=()) -> Placement:
    """Earliest conflict-free option of ``new_flight`` against ``accepted`` (kept fixed).

    Order: delay ascending, then layer preference, then route. Does not add the flight
    to the index (call ``accepted.accept(placement.trajectory)`` for that).

    Examples
    --------
    >>> from skytwin.planner.trajectory import Trajectory
    >>> idx = AcceptedIndex(options=DeconflictOptions(layer_shifts=(0,)))
    >>> a = Trajectory("a", [[0, 0, 0], [0, 0, 60], [600, 0, 60], [600, 0, 0]],
    ...                [0, 20, 70, 100])
    >>> idx.accept(a)
    >>> p = place(Trajectory("b", a.xyz_m, a.t_s), idx)
    >>> p.choice.delay_s   # same pad: wait until a has climbed and left (+ buffer)
    20.0
    >>> idx.cancel("a"); place(Trajectory("b", a.xyz_m, a.t_s), idx).choice.delay_s
    0.0
    """
    if not isinstance(new_flight, Trajectory):
        raise ConflictInputError(f"new_flight is a {type(new_flight).__name__}, "
                                 "not a Trajectory")
    if new_flight.flight_id in accepted:
        raise ConflictInputError(f"flight {new_flight.flight_id} is already accepted")
    opts, sep = accepted.options, accepted.sep
    cand = _options_of(new_flight, list(alternates), opts)
    k = int(math.floor(new_flight.max_delay_s / opts.delay_step_s + 1e-9))
    # only the accepted segments near some option, at some delay (AcceptedIndex)
    near, near_segs = accepted.near_segments([c[0] for c in cand],
                                             max_delay_s=k * opts.delay_step_s)
    feas = np.ones((len(cand), k + 1), bool)
    rows = np.zeros((0, 6), np.int64)
    n_new = len(cand)
    if near:
        n_new = len(cand)
        own = pack_segments([c[0] for c in cand])
        segs = SegmentTable(np.concatenate([own.p0, near_segs.p0]),
                            np.concatenate([own.p1, near_segs.p1]),
                            np.concatenate([own.t0, near_segs.t0]),
                            np.concatenate([own.t1, near_segs.t1]),
                            np.concatenate([own.owner, near_segs.owner + n_new]))
        max_steps = np.array([k] * n_new + [0] * len(near), np.int64)
        segs_flight = np.arange(n_new + len(near), dtype=np.int64)
        rows = _rows_between(None, segs_flight, max_steps, sep, opts, segs=segs,
                             cell_m=getattr(accepted, "cell_m", None),
                             n_first=own.t0.shape[0])
        feas = ~_blocked_delays(rows, n_new, k)
    # earliest feasible (delay, option): delay ascending, then option order
    first = int(np.argmax(feas.T.ravel())) if feas.size else 0
    d, o = divmod(first, n_new)
    if feas.size and feas[o, d]:
        traj, shift, r = cand[o]
        delay = d * opts.delay_step_s
        fl = new_flight
        tr = Trajectory(fl.flight_id, traj.xyz_m, traj.t_s + delay, fl.priority,
                        fl.max_delay_s, dict(fl.meta))
        return Placement(Choice(fl.flight_id, delay, shift, r), tr)
    oa, ob = rows[:, 1], rows[:, 3]
    other = np.where(oa < n_new, ob, oa)[(oa < n_new) != (ob < n_new)] - n_new
    blockers = {near[i].flight_id for i in other.tolist()}
    return Placement(None, None,
                     f"no conflict-free option within max_delay_s={new_flight.max_delay_s:g} "
                     f"over {len(cand)} layer/route options; blocked by "
                     f"{sorted(blockers)[:10]}")
