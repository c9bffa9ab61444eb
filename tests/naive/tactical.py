"""Brute-force oracle for skytwin.live.tactical: every pair of drones, every step.

Written differently from the kernel on purpose: no hashing and no interval algebra on
the step fraction. For each pair and step, the relative motion is taken in seconds, the
time of closest horizontal approach (tcpa) and the half-width of the horizontal window
come from the closed form ``dcpa^2 = |p|^2 - (p.q)^2/|q|^2``; the vertical window comes
from solving ``|pz + qz t| = V`` for t; the loss is their overlap inside the step.
"""

from __future__ import annotations

import math

import numpy as np


def _window(p, q, dt, h_m, v_m):
    """First time in [0, dt] when |p_xy + q_xy t| < H and |p_z + q_z t| < V, or None."""
    t_lo, t_hi = 0.0, dt
    q2 = q[0] ** 2 + q[1] ** 2
    if q2 == 0.0:
        if not p[0] ** 2 + p[1] ** 2 < h_m ** 2:
            return None
    else:
        tcpa = -(p[0] * q[0] + p[1] * q[1]) / q2
        d2 = (p[0] + q[0] * tcpa) ** 2 + (p[1] + q[1] * tcpa) ** 2
        if d2 >= h_m ** 2:
            return None
        half = math.sqrt((h_m ** 2 - d2) / q2)
        t_lo, t_hi = max(t_lo, tcpa - half), min(t_hi, tcpa + half)
    if q[2] == 0.0:
        if not abs(p[2]) < v_m:
            return None
    else:
        a, b = (-v_m - p[2]) / q[2], (v_m - p[2]) / q[2]
        t_lo, t_hi = max(t_lo, min(a, b)), min(t_hi, max(a, b))
    if t_hi - t_lo > 1e-9 * dt:
        return t_lo
    return None


def losses(xyz, valid, h_m=30.0, v_m=10.0, t0_s=0.0, step_s=1.0):
    """{(i, j): first time of loss} for every pair i < j (absolute time)."""
    n, nk1, _ = xyz.shape
    out = {}
    for i in range(n):
        for j in range(i + 1, n):
            for k in range(nk1 - 1):
                if not (valid[i, k] and valid[i, k + 1] and valid[j, k] and valid[j, k + 1]):
                    continue
                p = np.asarray(xyz[i, k], float) - xyz[j, k]
                q = ((np.asarray(xyz[i, k + 1], float) - xyz[i, k])
                     - (np.asarray(xyz[j, k + 1], float) - xyz[j, k])) / step_s
                w = _window(p, q, step_s, h_m, v_m)
                if w is not None:
                    out[(i, j)] = t0_s + k * step_s + w
                    break
    return out
