"""Slow, obviously-correct oracles for :mod:`planner.search` (small grids only).

Plain Dijkstra over a dict of voxels with :mod:`heapq`, the move rule written out
literally from its definition (every voxel of the bounding box of a and b is free for
"strict", only b for "free"), and a path checker that recomputes a path's cost.
"""

from __future__ import annotations

import heapq
import itertools
import math

import numpy as np

__all__ = ["dijkstra_cost", "move_allowed", "path_cost"]

MOVES = [d for d in itertools.product((-1, 0, 1), repeat=3) if d != (0, 0, 0)]


def _free(blocked, p) -> bool:
    return all(0 <= p[i] < blocked.shape[i] for i in range(3)) and not blocked[p]


def move_allowed(blocked, a, b, rule: str) -> bool:
    """Whether the single move a -> b (a 26-neighbour step) is legal under ``rule``."""
    if max(abs(b[i] - a[i]) for i in range(3)) != 1:
        return False
    if rule == "free":
        return _free(blocked, tuple(b))
    ranges = [range(min(a[i], b[i]), max(a[i], b[i]) + 1) for i in range(3)]
    return all(_free(blocked, p) for p in itertools.product(*ranges) if p != tuple(a))


def step_cost(a, b, cell_size=(1.0, 1.0, 1.0), vertical_factor=1.0) -> float:
    """Euclidean cost of one move, the vertical part scaled by ``vertical_factor``."""
    w = (cell_size[0], cell_size[1], cell_size[2] * vertical_factor)
    return math.sqrt(sum((w[i] * (b[i] - a[i])) ** 2 for i in range(3)))


def dijkstra_cost(
    blocked,
    start,
    goal,
    rule="strict",
    cell_size=(1.0, 1.0, 1.0),
    vertical_factor=1.0,
    voxel_cost=None,
    col_mult=None,
) -> float:
    """Least path cost from start to goal (``inf`` if unreachable); ``col_mult[x, y]``
    multiplies the length of every move entering column ``(x, y)``."""
    blocked = np.asarray(blocked)
    start, goal = tuple(int(v) for v in start), tuple(int(v) for v in goal)
    dist = {start: 0.0}
    heap = [(0.0, start)]
    done = set()
    while heap:
        d, a = heapq.heappop(heap)
        if a in done:
            continue
        done.add(a)
        if a == goal:
            return d
        for m in MOVES:
            b = (a[0] + m[0], a[1] + m[1], a[2] + m[2])
            if b in done or not move_allowed(blocked, a, b, rule):
                continue
            length = step_cost(a, b, cell_size, vertical_factor)
            if col_mult is not None:
                length *= float(col_mult[b[0], b[1]])
            nd = d + length
            if voxel_cost is not None:
                nd += float(voxel_cost[b])
            if nd < dist.get(b, math.inf):
                dist[b] = nd
                heapq.heappush(heap, (nd, b))
    return math.inf


def path_cost(
    blocked,
    path,
    rule="strict",
    cell_size=(1.0, 1.0, 1.0),
    vertical_factor=1.0,
    voxel_cost=None,
) -> float:
    """Cost of ``path`` ((n, 3) voxels); raises AssertionError on any illegal move."""
    path = [tuple(int(v) for v in p) for p in np.asarray(path)]
    assert path, "empty path"
    assert _free(np.asarray(blocked), path[0]), f"start {path[0]} not free"
    total = 0.0
    for a, b in itertools.pairwise(path):
        assert move_allowed(blocked, a, b, rule), f"illegal move {a} -> {b} ({rule})"
        total += step_cost(a, b, cell_size, vertical_factor)
        if voxel_cost is not None:
            total += float(voxel_cost[b])
    return total
