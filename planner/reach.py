"""Which columns of free air are connected: refuse an unreachable goal at once.

Why
---
A goal in a pocket of free air that no route can enter (a courtyard closed by
buildings whose roof + clearance reach the ceiling, a column hemmed in by taller
neighbours) made A* close every free cell of its window, and then the planner fell back
to each finer level and did it again: 10-15 s of CPU per refused PlanRoute on the
bundled city (issue 14 profile), with the large-search slots held meanwhile. Since the
twin is 2.5D, that question is a 2D one and can be answered once per altitude band:

* at the finest level a column ``(i, j)`` is free from layer ``floor[i, j]`` (the
  twin's first layer clear of buildings + clearance, raised to the cruise floor
  ``min_agl_m``) to layer ``ceil[i, j]`` (the AGL ceiling), one contiguous interval;
* under the search's ``"strict"`` rule (every voxel of a move's bounding box free) a
  diagonal move implies both orthogonal moves, so two voxels are connected exactly when
  they are joined by face moves (6-connectivity); a column's free voxels form one
  interval, so the free air splits into components of *columns*, two 4-neighbour
  columns being joined when their intervals overlap
  (``max(floor_a, floor_b) <= min(ceil_a, ceil_b)``);
* a kernel labels those components with union-find in one pass over the grid (about
  10 ms for the 0.4 M columns of the bundled city, O(columns) memory: an int32 per
  column, cached per altitude band like the planner's pyramids).

A start and goal whose columns carry different labels cannot be joined by any route,
whatever the window, level or zones (zones only block more air): the planner refuses
at once. The converse is not claimed (the same label may still be unreachable in the
search window or with the zones active), so the search still decides every other case.
``tests/test_reach.py`` checks the labels against ``scipy.ndimage.label`` of the 3D
free voxels with 6-connectivity.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from skytwin.airspace._jit import JIT

__all__ = ["column_components", "free_columns"]


@njit(**JIT)
def _find(parent, a):
    while parent[a] != a:
        parent[a] = parent[parent[a]]
        a = parent[a]
    return a


@njit(**JIT)
def _label_kernel(floor, ceil, labels):
    """Union-find over 4-neighbour columns with overlapping free intervals; writes
    ``labels`` (-1 for a column without free air, else the component's root index)."""
    ni, nj = floor.shape
    n = ni * nj
    parent = np.arange(n, dtype=np.int32)
    for i in range(ni):
        for j in range(nj):
            lo = floor[i, j]
            hi = ceil[i, j]
            if lo > hi:
                continue
            a = i * nj + j
            if i + 1 < ni:
                lo2 = max(lo, floor[i + 1, j])
                hi2 = min(hi, ceil[i + 1, j])
                if lo2 <= hi2:
                    ra = _find(parent, a)
                    rb = _find(parent, a + nj)
                    if ra != rb:
                        parent[max(ra, rb)] = min(ra, rb)
            if j + 1 < nj:
                lo2 = max(lo, floor[i, j + 1])
                hi2 = min(hi, ceil[i, j + 1])
                if lo2 <= hi2:
                    ra = _find(parent, a)
                    rb = _find(parent, a + 1)
                    if ra != rb:
                        parent[max(ra, rb)] = min(ra, rb)
    for i in range(ni):
        for j in range(nj):
            if floor[i, j] > ceil[i, j]:
                labels[i, j] = -1
            else:
                labels[i, j] = _find(parent, i * nj + j)


def column_components(floor_k, ceil_k):
    """Label the connected components of free air, column by column.

    Parameters
    ----------
    floor_k, ceil_k : (nx, ny) int array
        Lowest and highest free layer of each column (inclusive); ``floor > ceil``
        means the column has no free air.

    Returns
    -------
    labels : (nx, ny) int32
        ``-1`` for columns without free air; otherwise equal labels exactly for
        columns joined by face moves through free voxels.

    Examples
    --------
    >>> import numpy as np
    >>> floor = np.array([[0, 0, 9], [9, 9, 9], [0, 0, 0]])
    >>> ceil = np.full((3, 3), 5)
    >>> lab = column_components(floor, ceil)
    >>> bool(lab[0, 0] == lab[0, 1]), bool(lab[0, 0] == lab[2, 0]), int(lab[1, 1])
    (True, False, -1)
    """
    floor = np.ascontiguousarray(floor_k, dtype=np.int32)
    ceil = np.ascontiguousarray(ceil_k, dtype=np.int32)
    if floor.shape != ceil.shape or floor.ndim != 2:
        raise ValueError(f"floor_k and ceil_k must be 2D arrays of one shape, got "
                         f"{floor.shape} and {ceil.shape}")
    labels = np.empty(floor.shape, dtype=np.int32)
    _label_kernel(floor, ceil, labels)
    return labels


def free_columns(labels, label) -> int:
    """Number of columns carrying ``label`` (the size of that pocket of air)."""
    return int(np.count_nonzero(labels == label))
