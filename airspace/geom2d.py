"""Plane geometry kernels (numba) shared by the zone tests and the planner's fast
building screen: squared distances between points and segments in the horizontal
plane, exact up to floating point."""

from __future__ import annotations

from numba import njit

from skytwin.airspace._jit import JIT

__all__ = ["pt_seg_dist2", "seg_seg_dist2"]


@njit(**JIT)
def pt_seg_dist2(px, py, ax, ay, bx, by):
    """Squared distance from point P to segment AB."""
    ux = bx - ax
    uy = by - ay
    L2 = ux * ux + uy * uy
    t = 0.0
    if L2 > 0.0:
        t = ((px - ax) * ux + (py - ay) * uy) / L2
        t = min(1.0, max(0.0, t))
    qx = ax + t * ux - px
    qy = ay + t * uy - py
    return qx * qx + qy * qy


@njit(**JIT)
def seg_seg_dist2(ax, ay, bx, by, cx, cy, dx, dy):
    """Squared distance between segments AB and CD (0 when they cross)."""
    # proper or touching intersection via orientations
    d1 = (dx - cx) * (ay - cy) - (dy - cy) * (ax - cx)
    d2 = (dx - cx) * (by - cy) - (dy - cy) * (bx - cx)
    d3 = (bx - ax) * (cy - ay) - (by - ay) * (cx - ax)
    d4 = (bx - ax) * (dy - ay) - (by - ay) * (dx - ax)
    if ((d1 > 0 and d2 < 0) or (d1 < 0 and d2 > 0)) and (
        (d3 > 0 and d4 < 0) or (d3 < 0 and d4 > 0)
    ):
        return 0.0
    best = pt_seg_dist2(ax, ay, cx, cy, dx, dy)
    best = min(best, pt_seg_dist2(bx, by, cx, cy, dx, dy))
    best = min(best, pt_seg_dist2(cx, cy, ax, ay, bx, by))
    best = min(best, pt_seg_dist2(dx, dy, ax, ay, bx, by))
    return best
