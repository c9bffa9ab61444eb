"""Optimal 26-connected A* on a dense 3D occupancy grid (numba).

What it computes
----------------
``find_path(blocked, start, goal)`` returns a least-cost voxel path between two free
voxels of ``blocked: (nx, ny, nz) uint8`` (1 = blocked). A move changes each of x, y, z
by -1, 0 or +1 (26 neighbours) and costs the Euclidean length of the step,
``sqrt((ax*dx)^2 + (ay*dy)^2 + (az*dz*vertical_factor)^2)`` for axis flags ``a`` and cell
size ``(dx, dy, dz)`` (default 1, so 1, sqrt 2, sqrt 3 in grid units), plus an optional
non-negative ``voxel_cost`` paid on entering a voxel (e.g. flying close to buildings).
An optional per-column multiplier ``col_mult >= 1`` scales the length of every move by
the multiplier of the column it enters (ground risk: ``1 + w * normalised risk``, see
:mod:`airspace.risk`); because every move then costs at least its length, the
obstacle-free length below stays an admissible and consistent heuristic. With a
multiplier the search also takes the max of that length and a per-column lower bound:
the exact least cost to the goal's column in 2D (8-connected moves of horizontal
length x the multiplier of the column entered, by a Dijkstra over the columns, see
:func:`_column_bound`). Every 3D move costs at least its 2D projection, so that bound is
admissible and consistent too, and so is the max of the two; it keeps a risk-weighted
search focused (without it, A* floods the whole window once detours are dear). The
bound ``B`` of a voxel is combined with its vertical distance ``V`` to the goal's layer
(in cost units) as ``sqrt(B**2 + V**2)``: a move costs at least the hypot of its
horizontal cost and its vertical part, and sums of such hypots are at least the hypot
of the sums (Minkowski), so this stays admissible and consistent and keeps the search
from flooding the layers above the goal. ``column_bound=True`` uses the same bound
without multipliers (every multiplier 1, and diagonal moves only between open corner
columns, as the strict rule implies; :func:`_column_bound_unit`): in the city twin, where buildings of unknown
height block whole columns up to the ceiling, it cut the worst load-test search from
252,753 to 10,275 expansions, at the same optimal cost.

Movement rules
--------------
``"strict"`` (default; the Moving AI / HOG2 ``VoxelGrid::CanMove`` rule): a move from a
to b is legal only if every voxel of the axis-aligned bounding box of a and b is free,
i.e. no corner or edge cutting. Under this rule the search reproduces the published
optimal lengths of the Moving AI 3D benchmark (see ``benchmarks/bench_voxel3d.py``).
``"free"``: only the destination must be free (diagonals may squeeze between blocked
voxels). The city twin uses ``"strict"``.

Design choices (each kept because the benchmark showed it pays)
---------------------------------------------------------------
* **Padded flat grid.** The grid is copied once into a ``(nx+2, ny+2, nz+2)`` array
  with a border of blocked voxels (:class:`SearchGrid`), so the kernel works on flat
  indices with 26 precomputed offsets and never checks bounds.
* **Bitmask move test.** On expansion the kernel reads the 26 neighbours once into a
  27-bit "free" mask; a move is legal iff ``free & need[d] == need[d]``, where
  ``need[d]`` is the precomputed bounding-box mask of direction ``d`` (7 voxels for a
  3-axis move, 3 for a 2-axis move, 1 for an axis move; only the destination for the
  ``"free"`` rule). One pass over 26 bytes replaces up to 7 loads per move.
* **Heuristic: exact obstacle-free cost.** With sorted per-axis distances
  ``n1 >= n2 >= n3`` on axes ``a1, a2, a3``,
  ``h = n3*c(a1a2a3) + (n2-n3)*c(a1a2) + (n1-n2)*c(a1)`` where ``c(S)`` is the cost of
  the move along the axis set ``S``. This is the 3D octile distance for unit cells.
  ``c`` is submodular (square root of a sum of squares), so this greedy chain
  decomposition is the exact shortest path in the empty grid: the heuristic is
  admissible and consistent for any cell size and any ``vertical_factor >= 0`` (which
  scales up and down moves alike), and ``voxel_cost >= 0`` only adds to edge costs.
  Consistency lets each voxel be closed once (no re-opening).
* **Tie-breaking toward larger g.** Open space has huge plateaus of equal
  ``f = g + h``; among equal ``f`` the kernel pops the deepest node, so in open space it
  expands about one voxel per path step (a 100-step route across an empty 100**3
  grid: 99 expansions, against 8,146 when ties are left to the heap order). ``f`` is
  rounded to a multiple of ``2**-32`` before comparison so that equal lengths reached
  by different sums of ``1, sqrt 2, sqrt 3`` compare equal (float64 rounding would
  otherwise break ties at random); ``g`` stays unrounded float64, so the reported cost
  is exact to ~1e-12. The rounding only reorders entries whose f differ by less than
  ``2**-32`` (for f below ``2**21``; above, less than f's float64 spacing), so the path
  found is optimal to within about that much per step, far below the benchmark's 1e-6
  relative tolerance.
* **Bucketed open list, binary heap only for the lowest bucket.** Entries are filed by
  ``floor(f / width)`` (width = 1/8 of the cheapest move) into a ring of linked lists
  (O(1) push into a pooled free list); only the lowest non-empty bucket is moved into
  a binary heap ordered by (rounded f, larger g). Because ``h`` is a metric, every
  open entry has ``f < f_min + 2 * dearest move + dearest voxel_cost``, so a ring of
  that span never wraps onto live entries. The pop order is exactly that of one big
  heap, but the heap stays small and cache resident, and entries made stale by a later
  improvement (lazy deletion: improving a voxel pushes a new entry) are dropped when
  their bucket is moved, without ever entering the heap. On the hardest DA1 problem
  a single binary heap took 4.0 M pushes for 0.85 M expansions and 2.45 M of its
  3.3 M pops were stale; the buckets made the whole search ~1.6-1.7x faster (Complex
  and DA1, same expansions).
* **Reused buffers, stamped per query.** :class:`SearchWorkspace` holds one float64
  record per voxel, interleaved as ``rec[2v] = g`` and ``rec[2v+1] = 32*state + d``
  (``d`` the parent *direction*, so no 8-byte parent index), where ``state = 2*gen``
  means "seen in this query" and ``2*gen + 1`` "closed". Generations only grow (exact in
  float64 for 2**47 queries), so anything below ``64*gen`` is stale: each query bumps
  ``gen`` instead of clearing the buffers. One record per voxel puts g, state and parent
  of a neighbour in one cache line (16 bytes per padded voxel, allocated with
  ``np.zeros`` so untouched pages are never materialised); this measured ~10% faster
  on the 62 M-voxel DA1 map than separate g / stamp / parent arrays. The heap is one
  float64 array of ``(key, g, voxel)`` rows for the same reason.
* Not done: 3D jump point search (fewer heap operations around obstacles, but its
  forced-neighbour rules under the strict rule need a proof of optimality) and
  bidirectional search (with an octile heuristic it rarely expands fewer nodes than
  A*). On the hardest Moving AI problems A* must still close every voxel with
  ``f < C*`` (up to ~10**6 on DA1); that, not the cost per expansion, dominates p99.

Long routes (how the city planner layers on this)
-------------------------------------------------
The twin planner calls :func:`find_path` first on a coarse grid (a coarse voxel is
blocked if any fine voxel in it is, so a coarse path is conservative), then on the
fine grid restricted to a corridor around the coarse path: pass ``window=(lo, hi)``
(half-open voxel box) and, if the corridor is not a box, set ``voxel_cost`` or block
voxels outside it. Start, goal and the returned ``indices`` are always in the full
grid's coordinates; only the window is copied and padded. ``max_expansions`` bounds
the work of one query (status ``BUDGET_EXHAUSTED`` instead of an exception) so the
planner can widen the corridor or fall back to another strategy.

Threads
-------
Kernels are compiled with ``nogil=True``. Use one :class:`SearchWorkspace` per thread;
a :class:`SearchGrid` is read-only and can be shared.
"""

from __future__ import annotations

import enum
import functools
from dataclasses import dataclass

import numpy as np
from numba import njit
from numpy.typing import NDArray

from skytwin.airspace._jit import JIT
from skytwin.airspace.errors import AirspaceError, OutsideTwinError

__all__ = [
    "GoalBlockedError",
    "NoRouteError",
    "OutsideGridError",
    "SearchGrid",
    "SearchStatus",
    "SearchWorkspace",
    "StartBlockedError",
    "VoxelPath",
    "WorkspaceTooSmallError",
    "find_path",
    "octile_distance",
]

RULES = ("strict", "free")

# Status codes returned by the kernel.
FOUND = 0
NO_PATH = 1
BUDGET_EXHAUSTED = 2
HEAP_FULL = 3  # internal: the wrapper grows the heap and searches again


class SearchStatus(enum.IntEnum):
    """Outcome of one search (the kernel's integer status)."""

    FOUND = FOUND
    NO_PATH = NO_PATH
    BUDGET_EXHAUSTED = BUDGET_EXHAUSTED


# --------------------------------------------------------------------------- errors


class OutsideGridError(OutsideTwinError):
    """A start, goal or window lies outside the grid."""


class StartBlockedError(AirspaceError, ValueError):
    """The start voxel is blocked."""


class GoalBlockedError(AirspaceError, ValueError):
    """The goal voxel is blocked."""


class WorkspaceTooSmallError(AirspaceError, ValueError):
    """The workspace holds fewer voxels than the (padded) grid searched."""


class NoRouteError(AirspaceError, ValueError):
    """No path joins start and goal; ``reason`` says why."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


# --------------------------------------------------------------------------- tables

_DELTAS = np.array(
    [
        (dx, dy, dz)
        for dx in (-1, 0, 1)
        for dy in (-1, 0, 1)
        for dz in (-1, 0, 1)
        if (dx, dy, dz) != (0, 0, 0)
    ],
    dtype=np.int64,
)  # (26, 3)


def _nbr_bit(dx: int, dy: int, dz: int) -> int:
    return (dx + 1) * 9 + (dy + 1) * 3 + (dz + 1)


def _need_masks(strict: bool) -> NDArray[np.int64]:
    need = np.zeros(26, dtype=np.int64)
    for d, (dx, dy, dz) in enumerate(_DELTAS.tolist()):
        if not strict:
            need[d] = 1 << _nbr_bit(dx, dy, dz)
            continue
        m = 0
        for ex in {0, dx}:
            for ey in {0, dy}:
                for ez in {0, dz}:
                    if (ex, ey, ez) != (0, 0, 0):
                        m |= 1 << _nbr_bit(ex, ey, ez)
        need[d] = m
    return need


_NEED = {"strict": _need_masks(True), "free": _need_masks(False)}
_AXES = (np.abs(_DELTAS) * np.array([1, 2, 4])).sum(axis=1).astype(np.int64)  # (26,)


@functools.lru_cache(maxsize=64)
def _cost_tables(cell_size: tuple, vertical_factor: float):
    """(axis_cost (8,), step_cost (26,)) for one cell size, cached (read-only)."""
    axis_cost = _axis_costs(cell_size, vertical_factor)
    step_cost = axis_cost[_AXES]
    axis_cost.flags.writeable = False
    step_cost.flags.writeable = False
    return axis_cost, step_cost


@functools.lru_cache(maxsize=64)
def _offset_tables(ny: int, nz: int):
    """(26 move offsets, 27 neighbourhood offsets) of a padded grid, cached."""
    offsets = (_DELTAS[:, 0] * ny * nz + _DELTAS[:, 1] * nz + _DELTAS[:, 2]).astype(
        np.int64
    )
    nbr = np.array(
        [
            (a * ny + b) * nz + c
            for a in (-1, 0, 1)
            for b in (-1, 0, 1)
            for c in (-1, 0, 1)
        ],
        dtype=np.int64,
    )
    offsets.flags.writeable = False
    nbr.flags.writeable = False
    return offsets, nbr


def _axis_costs(cell_size, vertical_factor: float) -> NDArray[np.float64]:
    """Cost of a move along each axis subset (index = x:1 | y:2 | z:4)."""
    w = np.array([cell_size[0], cell_size[1], cell_size[2] * vertical_factor], float)
    c = np.zeros(8, dtype=np.float64)
    for m in range(8):
        c[m] = np.sqrt(sum(w[i] ** 2 for i in range(3) if m >> i & 1))
    return c


def octile_distance(
    a, b, cell_size=(1.0, 1.0, 1.0), vertical_factor: float = 1.0
) -> float:
    """Cost of the shortest 26-connected path between two voxels of an empty grid.

    This is the heuristic of :func:`find_path` (the 3D octile distance for unit cells).

    Examples
    --------
    >>> round(octile_distance((0, 0, 0), (3, 2, 1)), 6)  # sqrt3 + sqrt2 + 1
    4.146264
    >>> octile_distance((0, 0, 0), (0, 0, 0))
    0.0
    """
    c = _axis_costs(cell_size, vertical_factor)
    return float(
        _heuristic(int(a[0]), int(a[1]), int(a[2]), int(b[0]), int(b[1]), int(b[2]), c)
    )


# --------------------------------------------------------------------------- kernels


@njit(**JIT)
def _heuristic(x, y, z, gx, gy, gz, axis_cost):
    """Exact empty-grid cost from (x,y,z) to (gx,gy,gz); axis_cost : (8,) float64."""
    n1 = abs(x - gx)
    n2 = abs(y - gy)
    n3 = abs(z - gz)
    b1 = 1
    b2 = 2
    b3 = 4
    if n2 > n1:
        n1, n2 = n2, n1
        b1, b2 = b2, b1
    if n3 > n2:
        n2, n3 = n3, n2
        b2, b3 = b3, b2
        if n2 > n1:
            n1, n2 = n2, n1
            b1, b2 = b2, b1
    return (
        n3 * axis_cost[7] + (n2 - n3) * axis_cost[b1 | b2] + (n1 - n2) * axis_cost[b1]
    )


@njit(**JIT)
def _heap_push(heap, size, key, g, node):
    """Insert (key, g, node) into heap (3*cap float64 rows); smaller key, then larger g."""
    i = size
    while i > 0:
        p = (i - 1) >> 1
        pk = heap[3 * p]
        if pk < key or (pk == key and heap[3 * p + 1] >= g):
            break
        heap[3 * i] = pk
        heap[3 * i + 1] = heap[3 * p + 1]
        heap[3 * i + 2] = heap[3 * p + 2]
        i = p
    heap[3 * i] = key
    heap[3 * i + 1] = g
    heap[3 * i + 2] = node
    return size + 1


@njit(**JIT)
def _heap_pop_node(heap, size):
    """Remove the top entry; return (node, new size)."""
    top = np.int64(heap[2])
    size -= 1
    if size == 0:
        return top, size
    key = heap[3 * size]
    g = heap[3 * size + 1]
    node = heap[3 * size + 2]
    i = 0
    while True:
        c = 2 * i + 1
        if c >= size:
            break
        r = c + 1
        kc = heap[3 * c]
        if r < size:
            kr = heap[3 * r]
            if kr < kc or (kr == kc and heap[3 * r + 1] > heap[3 * c + 1]):
                c = r
                kc = kr
        if key < kc or (key == kc and g >= heap[3 * c + 1]):
            break
        heap[3 * i] = kc
        heap[3 * i + 1] = heap[3 * c + 1]
        heap[3 * i + 2] = heap[3 * c + 2]
        i = c
    heap[3 * i] = key
    heap[3 * i + 1] = g
    heap[3 * i + 2] = node
    return top, size


_KEY_SCALE = 4294967296.0  # 2**32: f is compared on a 2**-32 lattice (see docstring)


@njit(**JIT)
def _astar(
    grid,
    ny,
    nz,
    offsets,
    nbr_off,
    need,
    step_cost,
    axis_cost,
    voxel_cost,
    col_mult,
    h_col,
    start,
    goal,
    max_expansions,
    rec,
    gen,
    heap,
    pool,
    head,
    width,
):
    """A* on a padded flat grid with a bucketed open list.

    Open entries are filed by ``b = floor(f / width)`` into a ring of ``len(head)``
    singly linked lists held in ``pool`` (rows key, g, voxel, next; free rows are
    chained from ``free``). Only the entries of the lowest non-empty bucket live in the
    binary heap ``heap``, so the heap stays small (cache resident); entries already
    closed or superseded are dropped when their bucket is moved into the heap. Pop order
    is exactly that of one heap on (key, larger g): every entry of a lower bucket has a
    smaller f. The ring must span the f range of the open list, which is at most
    ``f_min + 2*max step + max voxel_cost`` (h is a metric), a bound the caller uses to
    size ``head``.

    grid : (n,) uint8, padded grid (border blocked), C order of (nx+2, ny+2, nz+2).
    ny, nz : int, padded sizes of axes 1 and 2.
    offsets : (26,) int64, flat offset of each move; nbr_off : (27,) int64, flat offset
        of each voxel of the 3x3x3 neighbourhood (bit k of the free mask).
    need : (26,) int64, free-mask bits a move requires (its rule).
    step_cost : (26,) float64, cost of each move; axis_cost : (8,) float64, per axis set.
    voxel_cost : (n,) or (0,) float64, extra cost of entering a voxel (empty = none).
    col_mult : ((nx+2)*(ny+2),) or (0,) float64 >= 1, multiplier on the length of a
        move entering padded column ``u // nz`` (empty = none).
    h_col : same shape as col_mult or (0,), float64: a consistent lower bound of the
        cost from each padded column to the goal (max-ed with the octile heuristic).
    start, goal : int, padded flat indices. max_expansions : int (<0 = unlimited).
    rec : (>= 2n,) float64 reused buffer, overwritten: rec[2v] = g,
        rec[2v+1] = 32*state + parent direction, state = 2*gen (seen in this query)
        or 2*gen + 1 (closed); older generations are smaller, hence stale.
    gen : int >= 1, this query's generation.
    heap : (3*cap,) float64 reused buffer, rows (key, g, voxel).

    pool : (4*P,) float64 reused buffer, rows (key, g, voxel, next row).
    head : (nb,) int64, first pool row of each bucket, overwritten.
    width : float > 0, bucket width in cost units.

    Returns (status, cost, expansions, path) with path the padded flat indices from
    start to goal (empty unless FOUND); HEAP_FULL when the heap or the pool is full.
    """
    seen = 64.0 * gen
    closed = seen + 32.0
    has_extra = voxel_cost.shape[0] > 0
    has_mult = col_mult.shape[0] > 0
    has_hcol = h_col.shape[0] > 0
    syz = ny * nz
    gx = goal // syz
    gy = (goal - gx * syz) // nz
    gz = goal - gx * syz - gy * nz
    cap = heap.shape[0] // 3
    pcap = pool.shape[0] // 4
    nb = head.shape[0]
    for i in range(nb):
        head[i] = -1
    free = -1
    top = 0
    listed = 0
    inv_w = 1.0 / width
    rec[2 * start] = 0.0
    rec[2 * start + 1] = seen
    sx0 = start // syz
    sy0 = (start - sx0 * syz) // nz
    sz0 = start - sx0 * syz - sy0 * nz
    h0 = _heuristic(sx0, sy0, sz0, gx, gy, gz, axis_cost)
    if has_hcol:
        hv = abs(sz0 - gz) * axis_cost[4]
        hc = np.sqrt(h_col[start // nz] ** 2 + hv * hv)
        if hc > h0:
            h0 = hc
    cur = np.int64(np.floor(h0 * inv_w))
    size = _heap_push(heap, 0, np.floor(h0 * _KEY_SCALE + 0.5), 0.0, start)
    expansions = 0
    empty = np.empty(0, dtype=np.int64)
    ddx = np.empty(26, dtype=np.int64)
    ddy = np.empty(26, dtype=np.int64)
    ddz = np.empty(26, dtype=np.int64)
    for d in range(26):
        o = offsets[d] + syz + nz + 1
        ddx[d] = o // syz - 1
        ddy[d] = (o - (ddx[d] + 1) * syz) // nz - 1
        ddz[d] = o - (ddx[d] + 1) * syz - (ddy[d] + 1) * nz - 1
    while True:
        if size == 0:
            if listed == 0:
                break
            # move the next non-empty bucket into the heap
            cur += 1
            slot = cur % nb
            while head[slot] < 0:
                cur += 1
                slot = cur % nb
            e = head[slot]
            head[slot] = -1
            while e >= 0:
                nxt = np.int64(pool[4 * e + 3])
                listed -= 1
                u = np.int64(pool[4 * e + 2])
                ge = pool[4 * e + 1]
                if rec[2 * u + 1] < closed and ge <= rec[2 * u]:
                    size = _heap_push(heap, size, pool[4 * e], ge, u)
                pool[4 * e + 3] = free
                free = e
                e = nxt
            continue
        v, size = _heap_pop_node(heap, size)
        mv = rec[2 * v + 1]
        if mv >= closed:
            continue
        rec[2 * v + 1] = mv + 32.0
        if v == goal:
            break
        if max_expansions >= 0 and expansions >= max_expansions:
            return BUDGET_EXHAUSTED, np.inf, expansions, empty
        expansions += 1
        gv = rec[2 * v]
        free_mask = 0
        for k in range(27):
            if grid[v + nbr_off[k]] == 0:
                free_mask |= 1 << k
        vx = v // syz
        vy = (v - vx * syz) // nz
        vz = v - vx * syz - vy * nz
        for d in range(26):
            nd = need[d]
            if free_mask & nd != nd:
                continue
            u = v + offsets[d]
            mu = rec[2 * u + 1]
            if mu >= closed:
                continue
            if has_mult:
                ng = gv + step_cost[d] * col_mult[u // nz]
            else:
                ng = gv + step_cost[d]
            if has_extra:
                ng += voxel_cost[u]
            if mu >= seen and ng >= rec[2 * u]:
                continue
            rec[2 * u] = ng
            rec[2 * u + 1] = seen + d
            hu = _heuristic(
                vx + ddx[d], vy + ddy[d], vz + ddz[d], gx, gy, gz, axis_cost
            )
            if has_hcol:
                hc = h_col[u // nz]
                if hc == np.inf:
                    continue  # cut off from the goal's column: cannot reach it
                hv = abs(vz + ddz[d] - gz) * axis_cost[4]
                hc = np.sqrt(hc * hc + hv * hv)
                if hc > hu:
                    hu = hc
            f = ng + hu
            key = np.floor(f * _KEY_SCALE + 0.5)
            b = np.int64(np.floor(f * inv_w))
            if b <= cur:
                if size >= cap:
                    return HEAP_FULL, np.inf, expansions, empty
                size = _heap_push(heap, size, key, ng, u)
            else:
                if free >= 0:
                    e = free
                    free = np.int64(pool[4 * e + 3])
                elif top < pcap:
                    e = top
                    top += 1
                else:
                    return HEAP_FULL, np.inf, expansions, empty
                slot = b % nb
                pool[4 * e] = key
                pool[4 * e + 1] = ng
                pool[4 * e + 2] = u
                pool[4 * e + 3] = head[slot]
                head[slot] = e
                listed += 1
    if rec[2 * goal + 1] < closed:
        return NO_PATH, np.inf, expansions, empty
    n = 1
    v = goal
    while v != start:
        v -= offsets[np.int64(rec[2 * v + 1] - closed)]
        n += 1
    path = np.empty(n, dtype=np.int64)
    v = goal
    for i in range(n - 1, -1, -1):
        path[i] = v
        if i > 0:
            v -= offsets[np.int64(rec[2 * v + 1] - closed)]
    return FOUND, rec[2 * goal], expansions, path


@njit(**JIT)
def _column_bound(col_mult, open_col, nxp, nyp, goal_col, cx, cy, out):
    """Least 2D cost from every padded column to ``goal_col`` (Dijkstra).

    col_mult : (nxp*nyp,) float64 >= 1, multiplier of the column a move enters.
    open_col : (nxp*nyp,) uint8, 1 where the column has a free voxel (a path never
        enters a column blocked from bottom to top; diagonal moves between open columns
        are allowed whatever the corners, so the bound stays below the 3D cost).
    cx, cy : float, column sizes in cost units. out : (nxp*nyp,) float64, overwritten
    with the costs (inf where the goal column cannot be reached through open columns:
    no 3D path from there exists either).
    A move from a to a neighbour b (8-connected) costs ``hypot(ax*cx, ay*cy) *
    col_mult[b]``; the search runs from the goal over reversed moves.
    """
    n = nxp * nyp
    for i in range(n):
        out[i] = np.inf
    cap = 8 * n + 8
    hk = np.empty(cap, dtype=np.float64)
    hn = np.empty(cap, dtype=np.int64)
    out[goal_col] = 0.0
    hk[0] = 0.0
    hn[0] = goal_col
    size = 1
    diag = np.sqrt(cx * cx + cy * cy)
    while size > 0:
        k = hk[0]
        b = hn[0]
        size -= 1
        # pop: move the last entry to the root and sift down
        lk = hk[size]
        ln = hn[size]
        i = 0
        while True:
            c = 2 * i + 1
            if c >= size:
                break
            if c + 1 < size and hk[c + 1] < hk[c]:
                c += 1
            if hk[c] < lk:
                hk[i] = hk[c]
                hn[i] = hn[c]
                i = c
            else:
                break
        hk[i] = lk
        hn[i] = ln
        if k > out[b]:
            continue
        bx = b // nyp
        by = b - bx * nyp
        for ax in range(-1, 2):
            for ay in range(-1, 2):
                if ax == 0 and ay == 0:
                    continue
                x = bx + ax
                y = by + ay
                if x < 0 or y < 0 or x >= nxp or y >= nyp:
                    continue
                a = x * nyp + y
                if open_col[a] == 0:
                    continue
                if ax != 0 and ay != 0:
                    step = diag
                elif ax != 0:
                    step = cx
                else:
                    step = cy
                nd = k + step * col_mult[b]
                if nd < out[a]:
                    out[a] = nd
                    if size >= cap:
                        continue  # cannot happen: each column improves at most 8 times
                    # push and sift up
                    j = size
                    size += 1
                    while j > 0:
                        p = (j - 1) // 2
                        if hk[p] > nd:
                            hk[j] = hk[p]
                            hn[j] = hn[p]
                            j = p
                        else:
                            break
                    hk[j] = nd
                    hn[j] = a
    return out


@njit(**JIT)
def _open_columns(grid, nxp, nyp, nzp, out):
    """``out[c] = 1`` where padded column ``c`` holds a free voxel, else 0.

    grid : (nxp*nyp*nzp,) uint8, padded grid; out : (nxp*nyp,) uint8, overwritten.
    """
    for c in range(nxp * nyp):
        o = c * nzp
        v = 0
        for k in range(nzp):
            if grid[o + k] == 0:
                v = 1
                break
        out[c] = v
    return out


@njit(**JIT)
def _column_bound_unit(open_col, nxp, nyp, goal_col, cx, cy, out):
    """:func:`_column_bound` with every multiplier 1 and strict diagonals, by Dial's
    bucket queue.

    The least 2D cost from every padded column to ``goal_col`` over open columns
    (8-connected, a move costs ``hypot(ax*cx, ay*cy)``; ``inf`` where the goal's column
    cannot be reached). A diagonal move also needs its two corner columns open: a
    strict 3D diagonal needs the voxels beside it free, so their columns are open, and
    the bound stays below the 3D cost (without this, two buildings touching at a
    corner leak, and a 2 m fallback search of the load test expanded 1.07 M voxels
    instead of 0.28 M). Buckets are ``w = min(cx, cy)`` wide, the cheapest move: a
    column taken from the lowest non-empty bucket cannot be improved by another of the
    same bucket (that would cost at least ``w`` more), so every column is final when it
    is taken, in any order within its bucket, as in Dijkstra's algorithm; each column
    sits in at most one bucket (doubly linked lists, moved on improvement), so the
    work is O(columns x 8) without a heap.

    open_col : (nxp*nyp,) uint8; out : (nxp*nyp,) float64, overwritten.
    """
    n = nxp * nyp
    for i in range(n):
        out[i] = np.inf
    w = min(cx, cy)
    diag = np.sqrt(cx * cx + cy * cy)
    nb = np.int64(diag / w) + 3
    head = np.full(nb, -1, dtype=np.int64)
    nxt = np.empty(n, dtype=np.int64)
    prv = np.empty(n, dtype=np.int64)
    slot_of = np.full(n, -1, dtype=np.int64)
    out[goal_col] = 0.0
    head[0] = goal_col
    nxt[goal_col] = -1
    prv[goal_col] = -1
    slot_of[goal_col] = 0
    count = 1
    cur = 0
    while count > 0:
        slot = cur % nb
        b = head[slot]
        if b < 0:
            cur += 1
            continue
        # take b out of its bucket
        head[slot] = nxt[b]
        if nxt[b] >= 0:
            prv[nxt[b]] = -1
        slot_of[b] = -1
        count -= 1
        k = out[b]
        bx = b // nyp
        by = b - bx * nyp
        for ax in range(-1, 2):
            for ay in range(-1, 2):
                if ax == 0 and ay == 0:
                    continue
                x = bx + ax
                y = by + ay
                if x < 0 or y < 0 or x >= nxp or y >= nyp:
                    continue
                a = x * nyp + y
                if open_col[a] == 0:
                    continue
                if ax != 0 and ay != 0:
                    # a strict 3D diagonal needs its two corner columns free too
                    if open_col[x * nyp + by] == 0 or open_col[bx * nyp + y] == 0:
                        continue
                    nd = k + diag
                elif ax != 0:
                    nd = k + cx
                else:
                    nd = k + cy
                if nd < out[a]:
                    out[a] = nd
                    q = np.int64(nd / w)
                    if q < cur:
                        q = cur      # rounding: never file below the current bucket
                    s = q % nb
                    old = slot_of[a]
                    if old >= 0:     # unlink from its bucket
                        if prv[a] >= 0:
                            nxt[prv[a]] = nxt[a]
                        else:
                            head[old] = nxt[a]
                        if nxt[a] >= 0:
                            prv[nxt[a]] = prv[a]
                    else:
                        count += 1
                    nxt[a] = head[s]
                    prv[a] = -1
                    if head[s] >= 0:
                        prv[head[s]] = a
                    head[s] = a
                    slot_of[a] = s
    return out


# --------------------------------------------------------------------------- objects


class SearchGrid:
    """A grid prepared for search: padded once, then shared by any number of queries.

    Parameters
    ----------
    blocked : (nx, ny, nz) array_like
        Non-zero = blocked. Copied into a padded ``uint8`` array with a blocked border.
    voxel_cost : (nx, ny, nz) array_like of float, optional
        Extra non-negative cost paid on entering each voxel (in the cost unit).
    col_mult : (nx, ny) array_like of float, optional
        Multiplier (finite, >= 1) on the length of every move entering a column.

    Examples
    --------
    >>> g = SearchGrid(np.zeros((2, 3, 4), np.uint8))
    >>> g.shape, g.padded.shape
    ((2, 3, 4), (4, 5, 6))
    """

    def __init__(self, blocked, voxel_cost=None, col_mult=None):
        blocked = np.asarray(blocked)
        if blocked.ndim != 3 or min(blocked.shape) < 1:
            raise ValueError(
                f"blocked must be a non-empty 3D array, got shape {blocked.shape}"
            )
        self.shape = tuple(int(s) for s in blocked.shape)
        self.padded = np.ones(tuple(s + 2 for s in self.shape), dtype=np.uint8)
        self.padded[1:-1, 1:-1, 1:-1] = blocked != 0
        self.flat = self.padded.reshape(-1)
        self._set_costs(voxel_cost, col_mult)

    @classmethod
    def from_padded(cls, padded, voxel_cost=None, col_mult=None) -> SearchGrid:
        """A grid over an already padded C-contiguous ``uint8`` array of 0/1 (border
        blocked), used as it is, without a copy (the caller must not change it while
        searching). Saves the copy of ``__init__`` (~1 ms for 2 M cells) when the
        caller builds its grid padded, as the city planner does.

        >>> p = np.ones((4, 5, 6), np.uint8); p[1:-1, 1:-1, 1:-1] = 0
        >>> SearchGrid.from_padded(p).shape
        (2, 3, 4)
        """
        padded = np.asarray(padded)
        if padded.ndim != 3 or min(padded.shape) < 3 or padded.dtype != np.uint8 \
                or not padded.flags.c_contiguous:
            raise ValueError("padded must be a C-contiguous uint8 array of at least "
                             f"3 x 3 x 3, got {padded.dtype} {padded.shape}")
        if not (padded[[0, -1]].all() and padded[:, [0, -1]].all()
                and padded[:, :, [0, -1]].all()):
            raise ValueError("padded must have a blocked (1) border")
        self = cls.__new__(cls)
        self.shape = tuple(int(s) - 2 for s in padded.shape)
        self.padded = padded
        self.flat = padded.reshape(-1)
        self._set_costs(voxel_cost, col_mult)
        return self

    def _set_costs(self, voxel_cost, col_mult) -> None:
        self.max_voxel_cost = 0.0
        if voxel_cost is None:
            self.voxel_cost = np.empty(0, dtype=np.float64)
        else:
            vc = np.asarray(voxel_cost, dtype=np.float64)
            if vc.shape != self.shape:
                raise ValueError(
                    f"voxel_cost shape {vc.shape} differs from blocked shape {self.shape}"
                )
            if not np.isfinite(vc).all() or (vc < 0).any():
                raise ValueError(
                    "voxel_cost must be finite and >= 0 (keeps A* optimal)"
                )
            pad = np.zeros(self.padded.shape, dtype=np.float64)
            pad[1:-1, 1:-1, 1:-1] = vc
            self.voxel_cost = pad.reshape(-1)
            self.max_voxel_cost = float(vc.max())
        self.max_col_mult = 1.0
        if col_mult is None:
            self.col_mult = np.empty(0, dtype=np.float64)
        else:
            cm = np.asarray(col_mult, dtype=np.float64)
            if cm.shape != self.shape[:2]:
                raise ValueError(
                    f"col_mult shape {cm.shape} differs from the grid's columns "
                    f"{self.shape[:2]}"
                )
            if not np.isfinite(cm).all() or (cm < 1.0).any():
                raise ValueError(
                    "col_mult must be finite and >= 1 (keeps the heuristic admissible)"
                )
            pad = np.ones(self.padded.shape[:2], dtype=np.float64)
            pad[1:-1, 1:-1] = cm
            self.col_mult = pad.reshape(-1)
            self.max_col_mult = float(cm.max())

    @property
    def blocked(self) -> NDArray[np.uint8]:
        """The unpadded occupancy grid (a view, 1 = blocked)."""
        return self.padded[1:-1, 1:-1, 1:-1]

    def window(self, lo, hi) -> SearchGrid:
        """A new grid holding the half-open box ``[lo, hi)`` of this one."""
        sl = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))
        vc = None
        if self.voxel_cost.shape[0]:
            vc = self.voxel_cost.reshape(self.padded.shape)[1:-1, 1:-1, 1:-1][sl]
        cm = None
        if self.col_mult.shape[0]:
            cm = self.col_mult.reshape(self.padded.shape[:2])[1:-1, 1:-1][sl[:2]]
        return SearchGrid(self.blocked[sl], vc, cm)


class SearchWorkspace:
    """Reusable search buffers (one per thread).

    Holds g-costs, parent directions and per-query stamps (interleaved in ``rec``, 16
    bytes per voxel) and the open-list heap, for grids of up to ``prod(shape + 2)``
    padded voxels, i.e. any grid of the same or smaller voxel count than ``shape``.
    Buffers are never cleared between queries: a generation counter tells this query's
    entries from older ones.

    Parameters
    ----------
    shape : tuple of 3 int
        Unpadded grid shape the workspace must accommodate.
    heap_capacity : int
        Initial heap size (entries); it doubles on demand and is kept.

    Examples
    --------
    >>> ws = SearchWorkspace((10, 10, 10))
    >>> grid = SearchGrid(np.zeros((10, 10, 10), np.uint8))
    >>> [round(find_path(grid, (0, 0, 0), g, workspace=ws).cost, 4)
    ...  for g in [(9, 9, 9), (9, 0, 0), (3, 2, 1)]]
    [15.5885, 9.0, 4.1463]
    """

    def __init__(self, shape, heap_capacity: int = 1 << 16):
        n = int(np.prod([int(s) + 2 for s in shape]))
        self.capacity = n
        self.rec = np.zeros(2 * n, dtype=np.float64)
        self.generation = 0
        self.bucket_head = np.empty(64, dtype=np.int64)
        self._alloc_heap(heap_capacity)

    def _alloc_heap(self, cap: int) -> None:
        self.heap = np.empty(3 * cap, dtype=np.float64)
        self.pool = np.empty(4 * cap, dtype=np.float64)

    def next_generation(self) -> int:
        """Advance and return the generation used to stamp one query."""
        self.generation += 1
        if self.generation >= 2**46:  # keeps 64*gen + 32 + 25 exact in float64
            self.rec[:] = 0.0
            self.generation = 1
        return self.generation


@dataclass(frozen=True)
class VoxelPath:
    """Result of :func:`find_path`.

    Attributes
    ----------
    indices : (n, 3) int64 ndarray
        Voxels ``(x, y, z)`` from start to goal in the full grid's coordinates
        (empty when the budget ran out).
    cost : float
        Path cost (grid units times cell size; ``inf`` when not found).
    expansions : int
        Voxels expanded by the search.
    status : SearchStatus
        ``FOUND`` or ``BUDGET_EXHAUSTED``.
    """

    indices: NDArray[np.int64]
    cost: float
    expansions: int
    status: SearchStatus


def _as_voxel(p, name: str) -> tuple[int, int, int]:
    try:
        t = tuple(int(v) for v in p)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be three integers (x, y, z), got {p!r}") from exc
    if len(t) != 3:
        raise ValueError(f"{name} must be three integers (x, y, z), got {p!r}")
    return t


def find_path(
    blocked,
    start,
    goal,
    *,
    rule: str = "strict",
    workspace: SearchWorkspace | None = None,
    cell_size=(1.0, 1.0, 1.0),
    vertical_factor: float = 1.0,
    voxel_cost=None,
    window=None,
    max_expansions: int | None = None,
    col_mult=None,
    column_bound: bool = False,
) -> VoxelPath:
    """Least-cost 26-connected path between two voxels.

    Parameters
    ----------
    blocked : (nx, ny, nz) array_like or SearchGrid
        Occupancy (non-zero = blocked). Pass a :class:`SearchGrid` to avoid copying
        and padding the grid on every query.
    start, goal : sequence of 3 int
        Voxel indices ``(x, y, z)`` in the full grid.
    rule : {"strict", "free"}
        ``"strict"``: every voxel of the bounding box of a move must be free (Moving
        AI / HOG2 rule, no corner cutting). ``"free"``: only the destination.
    workspace : SearchWorkspace, optional
        Reused buffers (one per thread). A fresh one is allocated if omitted.
    cell_size : sequence of 3 float
        Size of a voxel along x, y, z; move costs are Euclidean in these units.
    vertical_factor : float
        Multiplier (>= 0) on the vertical component of a move (climb/descent penalty).
    voxel_cost : (nx, ny, nz) array_like of float, optional
        Extra cost (>= 0) for entering each voxel. Only with an ndarray ``blocked``
        (a :class:`SearchGrid` carries its own).
    col_mult : (nx, ny) array_like of float, optional
        Multiplier (finite, >= 1) on the length of every move entering a column (cost
        of a move = length x multiplier, then ``voxel_cost``). Only with an ndarray
        ``blocked`` (a :class:`SearchGrid` carries its own).
    window : (lo, hi) pair of 3-int sequences, optional
        Search only inside the half-open box ``[lo, hi)``; the returned indices stay in
        full-grid coordinates.
    max_expansions : int, optional
        Stop with status ``BUDGET_EXHAUSTED`` after this many expansions.
    column_bound : bool
        Also without ``col_mult``, take the max of the octile heuristic and the exact
        2D cost to the goal's column through columns that hold a free voxel (the bound
        of ``col_mult`` searches with every multiplier 1, :func:`_column_bound_unit`).
        Same optimal cost; far fewer expansions where blocked columns force a
        horizontal detour (the city twin: buildings of unknown height reach the
        ceiling), at the price of one 2D pass over the window's columns.

    Returns
    -------
    VoxelPath
        Path, cost, expansion count and status.

    Raises
    ------
    OutsideGridError
        Start or goal outside the grid (or the window), or a window outside the grid.
    StartBlockedError, GoalBlockedError
        The start or goal voxel is blocked.
    NoRouteError
        Start and goal are not connected under the rule (the search was exhaustive).
    WorkspaceTooSmallError
        ``workspace`` has fewer voxels than the padded grid.
    ValueError
        Unknown rule, bad shapes or bad cost parameters.

    Examples
    --------
    >>> grid = np.zeros((5, 5, 1), np.uint8)
    >>> grid[2, 0:4, 0] = 1                       # a wall with a gap at y = 4
    >>> p = find_path(grid, (0, 0, 0), (4, 0, 0))
    >>> p.indices[:, :2].tolist()                 # no diagonal touches the wall
    [[0, 0], [1, 1], [1, 2], [1, 3], [1, 4], [2, 4], [3, 4], [4, 3], [4, 2], [4, 1], [4, 0]]
    >>> round(p.cost, 6), p.status.name
    (10.828427, 'FOUND')
    >>> round(find_path(grid, (0, 0, 0), (4, 0, 0), rule="free").cost, 6)
    9.656854
    """
    if rule not in RULES:
        raise ValueError(f"rule must be one of {RULES}, got {rule!r}")
    start = _as_voxel(start, "start")
    goal = _as_voxel(goal, "goal")
    cell = tuple(float(c) for c in cell_size)
    if len(cell) != 3 or not all(np.isfinite(c) and c > 0 for c in cell):
        raise ValueError(f"cell_size must be three positive numbers, got {cell_size!r}")
    vertical_factor = float(vertical_factor)
    if not (np.isfinite(vertical_factor) and vertical_factor >= 0):
        raise ValueError(
            f"vertical_factor must be finite and >= 0, got {vertical_factor}"
        )
    if isinstance(blocked, SearchGrid):
        if voxel_cost is not None or col_mult is not None:
            raise ValueError(
                "pass voxel_cost and col_mult to SearchGrid(...), not with a SearchGrid"
            )
        grid = blocked
    else:
        grid = None
        blocked = np.asarray(blocked)
        if blocked.ndim != 3 or min(blocked.shape) < 1:
            raise ValueError(
                f"blocked must be a non-empty 3D array, got shape {blocked.shape}"
            )
    shape = grid.shape if grid is not None else tuple(blocked.shape)
    for name, p in (("start", start), ("goal", goal)):
        if not all(0 <= p[i] < shape[i] for i in range(3)):
            raise OutsideGridError(f"{name} {p} is outside the grid of shape {shape}")
    lo = (0, 0, 0)
    if window is not None:
        lo = _as_voxel(window[0], "window lo")
        hi = _as_voxel(window[1], "window hi")
        if not all(0 <= lo[i] < hi[i] <= shape[i] for i in range(3)):
            raise OutsideGridError(
                f"window {lo}..{hi} is empty or outside the grid of shape {shape}"
            )
        for name, p in (("start", start), ("goal", goal)):
            if not all(lo[i] <= p[i] < hi[i] for i in range(3)):
                raise OutsideGridError(f"{name} {p} is outside the window {lo}..{hi}")
        if grid is not None:
            grid = grid.window(lo, hi)
        else:  # copy and pad only the window, never the whole grid
            sl = tuple(slice(lo[i], hi[i]) for i in range(3))
            vc = None if voxel_cost is None else np.asarray(voxel_cost)
            if vc is not None and vc.shape != shape:
                raise ValueError(
                    f"voxel_cost shape {vc.shape} differs from blocked shape {shape}"
                )
            cm = None if col_mult is None else np.asarray(col_mult)
            if cm is not None and cm.shape != shape[:2]:
                raise ValueError(
                    f"col_mult shape {cm.shape} differs from the columns {shape[:2]}"
                )
            grid = SearchGrid(blocked[sl], None if vc is None else vc[sl],
                              None if cm is None else cm[sl[:2]])
    elif grid is None:
        grid = SearchGrid(blocked, voxel_cost, col_mult)
    ls = tuple(start[i] - lo[i] for i in range(3))
    lg = tuple(goal[i] - lo[i] for i in range(3))
    if grid.blocked[ls]:
        raise StartBlockedError(f"start {start} is a blocked voxel")
    if grid.blocked[lg]:
        raise GoalBlockedError(f"goal {goal} is a blocked voxel")
    pshape = grid.padded.shape
    if workspace is None:
        workspace = SearchWorkspace(grid.shape)
    elif workspace.capacity < grid.flat.shape[0]:
        raise WorkspaceTooSmallError(
            f"workspace holds {workspace.capacity} voxels, the padded grid "
            f"{pshape} needs {grid.flat.shape[0]}"
        )
    ny, nz = pshape[1], pshape[2]
    offsets, nbr = _offset_tables(ny, nz)
    axis_cost, step_cost = _cost_tables(cell, vertical_factor)
    s_flat = ((ls[0] + 1) * ny + ls[1] + 1) * nz + ls[2] + 1
    g_flat = ((lg[0] + 1) * ny + lg[1] + 1) * nz + lg[2] + 1
    budget = -1 if max_expansions is None else int(max_expansions)
    if grid.col_mult.shape[0] or column_bound:
        h_col = np.empty(pshape[0] * pshape[1], dtype=np.float64)
        open_col = _open_columns(grid.flat, pshape[0], pshape[1], pshape[2],
                                 np.empty(pshape[0] * pshape[1], dtype=np.uint8))
        if grid.col_mult.shape[0]:
            _column_bound(grid.col_mult, open_col, pshape[0], pshape[1], g_flat // nz,
                          float(cell[0]), float(cell[1]), h_col)
        else:
            _column_bound_unit(open_col, pshape[0], pshape[1], g_flat // nz,
                               float(cell[0]), float(cell[1]), h_col)
        if not np.isfinite(h_col[s_flat // nz]):
            raise NoRouteError(
                f"no route from {start} to {goal} under the {rule!r} rule: columns "
                "blocked from bottom to top separate the start's column from the goal's")
    else:
        h_col = np.empty(0, dtype=np.float64)
    # Bucket width: 1/8 of the cheapest move; the ring spans the open list's f range
    # (2 * dearest move + dearest voxel), capped at 2**16 buckets by widening them.
    positive = step_cost[step_cost > 0]
    span = 2.0 * float(step_cost.max()) * grid.max_col_mult + grid.max_voxel_cost
    width = max(float(positive.min()) / 8.0 if positive.size else 1.0, span / 65536.0)
    n_buckets = int(span / width) + 4
    if workspace.bucket_head.shape[0] < n_buckets:
        workspace.bucket_head = np.empty(n_buckets, dtype=np.int64)
    head = workspace.bucket_head[:n_buckets]
    while True:
        gen = workspace.next_generation()
        status, cost, expansions, path = _astar(
            grid.flat,
            ny,
            nz,
            offsets,
            nbr,
            _NEED[rule],
            step_cost,
            axis_cost,
            grid.voxel_cost,
            grid.col_mult,
            h_col,
            s_flat,
            g_flat,
            budget,
            workspace.rec,
            gen,
            workspace.heap,
            workspace.pool,
            head,
            width,
        )
        if status != HEAP_FULL:
            break
        workspace._alloc_heap(2 * workspace.heap.shape[0] // 3)
    if status == NO_PATH:
        where = "" if window is None else f" inside the window {lo}..{tuple(window[1])}"
        raise NoRouteError(
            f"no route from {start} to {goal}{where} under the {rule!r} rule: the goal is "
            f"not in the start's connected free region ({expansions} voxels reached, "
            "all explored)"
        )
    if status == BUDGET_EXHAUSTED:
        return VoxelPath(
            np.empty((0, 3), np.int64),
            float("inf"),
            int(expansions),
            SearchStatus.BUDGET_EXHAUSTED,
        )
    px, rem = np.divmod(path, ny * nz)
    py, pz = np.divmod(rem, nz)
    idx = np.stack([px, py, pz], axis=1) - 1 + np.array(lo, dtype=np.int64)
    return VoxelPath(
        idx.astype(np.int64), float(cost), int(expansions), SearchStatus.FOUND
    )
