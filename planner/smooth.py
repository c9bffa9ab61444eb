"""Any-angle smoothing of a voxel path, and centimetre quantization.

The voxel path from :mod:`planner.search` is clear by construction (it only crosses
free, conservatively rasterized voxels) but zig-zags along the 26 lattice directions.
:func:`shortcut` replaces it by few straight segments: from each anchor it looks for the
farthest later point that it can see (every candidate segment is decided by the caller's
exact ``is_clear`` test), first by doubling the step and then by bisection, and then
tries to drop each remaining interior waypoint. :func:`quantize` rounds waypoints to
1 cm; because rounding moves a point by up to 7 mm, the caller re-checks the rounded
polyline and :func:`shortcut_quantized` repairs a failing rounded segment by
re-inserting the (rounded) voxel points it had skipped.

Only segments accepted by ``is_clear`` ever enter the result, so the output is as safe
as that test; the voxel path is the fall-back that always passes it.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["QUANTUM_M", "quantize", "shortcut", "shortcut_quantized"]

QUANTUM_M = 0.01
"""Waypoint quantum [m]: routes are exchanged with centimetre precision."""

IsClear = Callable[[np.ndarray, np.ndarray], bool]


def quantize(xyz_m, quantum_m: float = QUANTUM_M) -> np.ndarray:
    """Round coordinates to the nearest multiple of ``quantum_m``.

    >>> quantize([[1.004, 2.006, 3.0149]]).tolist()
    [[1.0, 2.01, 3.01]]
    """
    scale = round(1.0 / quantum_m)  # divide by an integer: 2.01, not 2.0100000000000002
    return np.round(np.asarray(xyz_m, dtype=np.float64) * scale) / scale


def shortcut(points, is_clear: IsClear, accept=None) -> list[int]:
    """Indices of the waypoints kept from ``points`` (first and last always kept).

    Parameters
    ----------
    points : (n, 3) float64 [m]
        A polyline whose consecutive segments all pass ``is_clear``.
    is_clear : callable(p0, p1) -> bool
        Exact test of one straight segment.
    accept : callable(i, j) -> bool, optional
        A further condition on replacing ``points[i..j]`` by one segment (the
        risk-aware planner: the segment must not cost more, weighted by ground risk,
        than the piece it replaces). Consecutive points are always accepted.
    """
    pts = np.asarray(points, dtype=np.float64)
    if accept is not None:
        plain = is_clear

        def is_clear_idx(a, b):
            return (b == a + 1 or accept(a, b)) and plain(pts[a], pts[b])
    else:
        def is_clear_idx(a, b):
            return is_clear(pts[a], pts[b])
    n = len(pts)
    if n <= 2:
        return list(range(n))
    keep = [0]
    a = 0
    while a < n - 1:
        if is_clear_idx(a, n - 1):
            keep.append(n - 1)
            break
        good, step = a + 1, 1
        bad = n - 1
        while True:  # gallop
            cand = a + 2 * step
            if cand >= bad:
                break
            if is_clear_idx(a, cand):
                good, step = cand, 2 * step
            else:
                bad = cand
                break
        while bad - good > 1:  # bisect between a visible and a hidden point
            mid = (good + bad) // 2
            if is_clear_idx(a, mid):
                good = mid
            else:
                bad = mid
        keep.append(good)
        a = good
    # drop interior waypoints that are no longer needed
    changed = True
    while changed and len(keep) > 2:
        changed = False
        i = 1
        while i < len(keep) - 1:
            if is_clear_idx(keep[i - 1], keep[i + 1]):
                del keep[i]
                changed = True
            else:
                i += 1
    return keep


def shortcut_quantized(points, is_clear: IsClear, quantum_m: float = QUANTUM_M,
                       accept=None):
    """Smooth, quantize, and repair: a rounded polyline whose every segment is clear.

    Returns
    -------
    (m, 3) float64 or None
        The rounded waypoints, or ``None`` when even the rounded voxel path fails the
        test (the caller must then refuse the route).
    """
    pts = np.asarray(points, dtype=np.float64)
    q = quantize(pts, quantum_m)
    keep = shortcut(pts, is_clear, accept)
    out = [q[keep[0]]]
    for a, b in zip(keep[:-1], keep[1:], strict=True):
        if is_clear(out[-1], q[b]):
            out.append(q[b])
            continue
        for k in range(a + 1, b + 1):  # re-insert the skipped voxel points
            if not is_clear(out[-1], q[k]):
                return None
            out.append(q[k])
    return np.array(out)
