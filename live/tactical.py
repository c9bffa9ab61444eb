"""Tactical conflict prediction: predicted losses of separation among airborne drones.

Definition
----------
Every second the service predicts each drone over a look-ahead ``horizon_s`` (default
30 s) sampled every ``step_s`` (default 1 s) from ``now``:

* a *conforming* drone (activated) follows the rest of its approved trajectory;
* a *nonconforming or contingent* drone follows its measured state: the last accepted
  position moved on at its measured velocity (constant-velocity extrapolation from the
  report's own time, as BlueSky's state-based detection does);
* a *booked* flight about to depart follows its approved trajectory from its departure
  time (before that it is on the ground and takes no part).

Between two samples each predicted drone moves on a straight line at constant speed.
Two drones have a *predicted loss of separation* when, at one moment of the look-ahead,
both are predicted and they are closer than the horizontal minimum ``H`` AND the
vertical minimum ``V`` (strictly, for a positive time), the same definition as strategic
detection (:mod:`skytwin.planner.conflicts`, defaults 30 m / 10 m). No timing buffer is
added here: the prediction is re-made every second from fresh measurements.

Basis: F3548-21 asks for conflicts to be resolved before they happen; a 30 s look-ahead
at 12 m/s cruise is 360 m, enough to re-plan (tens of ms) and for the drone to turn. A
1 s step keeps the piecewise-linear prediction within centimetres of the planned path on
straight legs; at a corner the prediction cuts inside by at most ``v * step / 4``.

Algorithm
---------
1. Sample all predictions into one array ``xyz (n, K+1, 3)`` with a validity mask
   (:func:`predict`), using one numba pass over the packed trajectories.
2. Spatial hash: each valid step ``k`` of each drone is a segment; its horizontal
   bounding box, inflated by ``H/2``, is entered in every cell (``cell_m >= H``, default
   ``2 H``) it touches, under the key ``(k, cell x, cell y)`` (:func:`_fill_entries`).
   Two points closer than ``H`` have a midpoint within ``H/2`` of both, so two drones
   that lose separation during step ``k`` share at least one key.
3. Entries are sorted by key; within each key every pair of different drones whose z
   ranges (inflated by ``V/2``) overlap is tested exactly (:func:`_step_loss`): on the
   step the relative position is linear in time, so ``|dh| < H`` is an open interval
   from a quadratic and ``|dz| < V`` an open interval from a linear inequality; a loss
   is their intersection inside the step having positive length.
4. Pairs found in several cells or steps are reduced to the first moment of loss.

Cost is ``O(n K)`` entries plus the pairs that really share cells, not ``O(n^2 K)``;
``tests/naive/tactical.py`` is the brute-force twin (every pair, every step).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit

from skytwin.airspace._jit import JIT
from skytwin.live.errors import LiveInputError

__all__ = ["PREDICT_BOOKED", "PREDICT_MEASURED", "PREDICT_PLAN", "PredictedLoss",
           "Prediction", "detect_losses", "loss_arrays", "predict"]

PREDICT_PLAN = 0
PREDICT_MEASURED = 1
PREDICT_BOOKED = 2


@dataclass
class Prediction:
    """Sampled predictions of ``n`` drones.

    Attributes
    ----------
    flight_ids : list of str
    xyz_m : (n, K+1, 3) float64 [m] local frame, at ``t0_s + k * step_s``
    valid : (n, K+1) bool, the drone is predicted (airborne) at that sample
    mode : (n,) int8, PREDICT_PLAN / PREDICT_MEASURED / PREDICT_BOOKED
    t0_s, step_s : float
    """

    flight_ids: list
    xyz_m: np.ndarray
    valid: np.ndarray
    mode: np.ndarray
    t0_s: float
    step_s: float

    def __len__(self) -> int:
        return len(self.flight_ids)

    @property
    def times_s(self) -> np.ndarray:
        return self.t0_s + self.step_s * np.arange(self.xyz_m.shape[1])

    def position_at(self, i: int, t_s: float) -> np.ndarray:
        """Predicted position of drone ``i`` at ``t_s`` (linear between samples)."""
        tt = self.times_s
        return np.array([np.interp(t_s, tt, self.xyz_m[i, :, c]) for c in range(3)])


@dataclass(frozen=True)
class PredictedLoss:
    """A predicted loss of separation between two drones.

    Attributes
    ----------
    flight_a, flight_b : str
    t_s : float
        First moment of loss [s].
    h_m, v_m : float
        Horizontal and vertical distance at that step's closest approach.
    """

    flight_a: str
    flight_b: str
    t_s: float
    h_m: float
    v_m: float


# ----------------------------------------------------------------------------- kernels

@njit(**JIT)
def _sample_packed(off, tt, txyz, t0, step, out, valid, row0):
    """Sample packed trajectories at t0 + k*step into out[row0 + f] (valid inside the
    trajectory's time span only).

    off : (m+1,) int64 CSR into tt (npts,) float64, txyz (npts, 3) float64;
    out : (n, K+1, 3) float64; valid : (n, K+1) bool.
    """
    m = off.shape[0] - 1
    nk = out.shape[1]
    for f in range(m):
        a = off[f]
        b = off[f + 1]
        i = a
        for k in range(nk):
            t = t0 + k * step
            r = row0 + f
            if t < tt[a] or t > tt[b - 1]:
                valid[r, k] = False
                out[r, k, 0] = np.nan
                out[r, k, 1] = np.nan
                out[r, k, 2] = np.nan
                continue
            while i < b - 2 and tt[i + 1] < t:
                i += 1
            span = tt[i + 1] - tt[i] if b - a > 1 else 0.0
            s = 0.0 if span <= 0.0 else (t - tt[i]) / span
            s = min(max(s, 0.0), 1.0)
            j = i + 1 if b - a > 1 else i
            out[r, k, 0] = txyz[i, 0] + s * (txyz[j, 0] - txyz[i, 0])
            out[r, k, 1] = txyz[i, 1] + s * (txyz[j, 1] - txyz[i, 1])
            out[r, k, 2] = txyz[i, 2] + s * (txyz[j, 2] - txyz[i, 2])
            valid[r, k] = True


@njit(**JIT)
def _cells_of(x0, y0, x1, y1, cell_m, half_h):
    cx0 = int(math.floor((min(x0, x1) - half_h) / cell_m))
    cx1 = int(math.floor((max(x0, x1) + half_h) / cell_m))
    cy0 = int(math.floor((min(y0, y1) - half_h) / cell_m))
    cy1 = int(math.floor((max(y0, y1) + half_h) / cell_m))
    return cx0, cx1, cy0, cy1


@njit(**JIT)
def _count_entries(xyz, valid, cell_m, half_h):
    """Number of (key, drone) entries (see _fill_entries)."""
    n = xyz.shape[0]
    nk = xyz.shape[1] - 1
    total = 0
    for i in range(n):
        for k in range(nk):
            if not (valid[i, k] and valid[i, k + 1]):
                continue
            cx0, cx1, cy0, cy1 = _cells_of(xyz[i, k, 0], xyz[i, k, 1], xyz[i, k + 1, 0],
                                           xyz[i, k + 1, 1], cell_m, half_h)
            total += (cx1 - cx0 + 1) * (cy1 - cy0 + 1)
    return total


@njit(**JIT)
def _fill_entries(xyz, valid, cell_m, half_h, key, drone):
    """Enter step k of drone i in every cell (cx, cy) its inflated box touches.

    key : (e,) int64 = ((k * 2^20 + cx + 2^19) * 2^20 + cy + 2^19); drone : (e,) int64.
    Cells are clamped to +-2^19 (31 000 km at 60 m cells).
    """
    n = xyz.shape[0]
    nk = xyz.shape[1] - 1
    e = 0
    for i in range(n):
        for k in range(nk):
            if not (valid[i, k] and valid[i, k + 1]):
                continue
            cx0, cx1, cy0, cy1 = _cells_of(xyz[i, k, 0], xyz[i, k, 1], xyz[i, k + 1, 0],
                                           xyz[i, k + 1, 1], cell_m, half_h)
            for cx in range(cx0, cx1 + 1):
                for cy in range(cy0, cy1 + 1):
                    ux = min(max(cx + 524288, 0), 1048575)
                    uy = min(max(cy + 524288, 0), 1048575)
                    key[e] = (k * 1048576 + ux) * 1048576 + uy
                    drone[e] = i
                    e += 1
    return e


@njit(**JIT)
def _step_loss(a0, a1, b0, b1, h_m, v_m):
    """Loss of separation during one step (both move linearly over u in [0, 1]).

    a0, a1, b0, b1 : (3,) float64 views. Returns (found, u_in, h_at_cpa, v_at_cpa):
    u_in the first fraction of the step inside both minima.
    """
    cx = a0[0] - b0[0]
    cy = a0[1] - b0[1]
    cz = a0[2] - b0[2]
    dx = (a1[0] - a0[0]) - (b1[0] - b0[0])
    dy = (a1[1] - a0[1]) - (b1[1] - b0[1])
    dz = (a1[2] - a0[2]) - (b1[2] - b0[2])
    lo = 0.0
    hi = 1.0
    if dz == 0.0:
        if not abs(cz) < v_m:
            return False, 0.0, 0.0, 0.0
    else:
        u = (-v_m - cz) / dz
        w = (v_m - cz) / dz
        lo = max(lo, min(u, w))
        hi = min(hi, max(u, w))
    qa = dx * dx + dy * dy
    qb = 2.0 * (cx * dx + cy * dy)
    qc = cx * cx + cy * cy - h_m * h_m
    if qa == 0.0:
        if not qc < 0.0:
            return False, 0.0, 0.0, 0.0
    else:
        disc = qb * qb - 4.0 * qa * qc
        if disc <= 0.0:
            return False, 0.0, 0.0, 0.0
        sq = math.sqrt(disc)
        lo = max(lo, (-qb - sq) / (2.0 * qa))
        hi = min(hi, (-qb + sq) / (2.0 * qa))
    if not hi - lo > 1e-9:
        return False, 0.0, 0.0, 0.0
    uc = 0.0 if qa == 0.0 else -qb / (2.0 * qa)
    uc = min(max(uc, lo), hi)
    hx = cx + uc * dx
    hy = cy + uc * dy
    return True, lo, math.sqrt(hx * hx + hy * hy), abs(cz + uc * dz)


@njit(**JIT)
def _cell_pairs(key, drone, xyz, h_m, v_m, fill, oi, oj, ok_, ou, oh, ov):
    """Exact test of every pair of different drones sharing a key (sorted by key).

    fill False: count hits only; fill True: write hits (drone i < j, step k, fraction
    u of the step, distances) to oi, oj, ok_, ou, oh, ov. Returns the hit count.
    """
    n = key.shape[0]
    half_v = 0.5 * v_m
    c = 0
    a = 0
    while a < n:
        b = a
        while b < n and key[b] == key[a]:
            b += 1
        k = key[a] // (1048576 * 1048576)
        for p in range(a, b):
            i = drone[p]
            zi0 = min(xyz[i, k, 2], xyz[i, k + 1, 2]) - half_v
            zi1 = max(xyz[i, k, 2], xyz[i, k + 1, 2]) + half_v
            for q in range(p + 1, b):
                j = drone[q]
                if i == j:
                    continue
                zj0 = min(xyz[j, k, 2], xyz[j, k + 1, 2]) - half_v
                zj1 = max(xyz[j, k, 2], xyz[j, k + 1, 2]) + half_v
                if zj0 > zi1 or zi0 > zj1:
                    continue
                found, u, hh, vv = _step_loss(xyz[i, k], xyz[i, k + 1], xyz[j, k],
                                              xyz[j, k + 1], h_m, v_m)
                if found:
                    if fill:
                        oi[c] = min(i, j)
                        oj[c] = max(i, j)
                        ok_[c] = k
                        ou[c] = u
                        oh[c] = hh
                        ov[c] = vv
                    c += 1
        a = b
    return c


# ----------------------------------------------------------------------------- public

def _pack(trajs):
    lens = np.array([len(t.t_s) for t in trajs], np.int64)
    off = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
    if len(trajs):
        tt = np.concatenate([t.t_s for t in trajs])
        xyz = np.concatenate([t.xyz_m for t in trajs])
    else:
        tt = np.zeros(0)
        xyz = np.zeros((0, 3))
    return off, tt, xyz


def predict(now_s: float, *, plan_ids=(), plan_trajs=(), measured_ids=(),
            measured_t_s=None, measured_xyz_m=None, measured_vel_mps=None,
            booked_ids=(), booked_trajs=(), horizon_s: float = 30.0,
            step_s: float = 1.0) -> Prediction:
    """Sample every drone's prediction (see module docstring).

    Parameters
    ----------
    now_s : float
    plan_ids, plan_trajs : conforming drones and their approved trajectories.
    measured_ids : drones predicted from their measured state, with
        ``measured_t_s (m,)``, ``measured_xyz_m (m, 3)``, ``measured_vel_mps (m, 3)``
        (NaN velocity = hovering).
    booked_ids, booked_trajs : flights not yet airborne (predicted from departure).
    horizon_s, step_s : look-ahead and sample step [s].
    """
    if not (math.isfinite(horizon_s) and math.isfinite(step_s) and step_s > 0
            and horizon_s >= step_s):
        raise LiveInputError(f"need 0 < step_s <= horizon_s, got {step_s}, {horizon_s}")
    nk = int(math.ceil(horizon_s / step_s - 1e-9)) + 1
    if nk > 1000:
        raise LiveInputError(f"at most 1000 prediction steps, got {nk}")
    plan_trajs = list(plan_trajs)
    booked_trajs = list(booked_trajs)
    if len(plan_ids) != len(plan_trajs) or len(booked_ids) != len(booked_trajs):
        raise LiveInputError("one trajectory per id")
    n_p, n_b, n_m = len(plan_trajs), len(booked_trajs), len(measured_ids)
    n = n_p + n_b + n_m
    out = np.empty((n, nk, 3))
    valid = np.zeros((n, nk), np.bool_)
    if n_p:
        off, tt, txyz = _pack(plan_trajs)
        _sample_packed(off, tt, txyz, float(now_s), float(step_s), out, valid, 0)
    if n_b:
        off, tt, txyz = _pack(booked_trajs)
        _sample_packed(off, tt, txyz, float(now_s), float(step_s), out, valid, n_p)
    if n_m:
        mt = np.asarray(measured_t_s, np.float64).reshape(n_m)
        mp = np.asarray(measured_xyz_m, np.float64).reshape(n_m, 3)
        mv = (np.zeros((n_m, 3)) if measured_vel_mps is None
              else np.nan_to_num(np.asarray(measured_vel_mps, np.float64).reshape(n_m, 3)))
        tk = now_s + step_s * np.arange(nk)
        dt = np.maximum(tk[None, :] - mt[:, None], 0.0)
        out[n_p + n_b:] = mp[:, None, :] + mv[:, None, :] * dt[:, :, None]
        valid[n_p + n_b:] = np.all(np.isfinite(out[n_p + n_b:]), axis=2)
    ids = list(plan_ids) + list(booked_ids) + list(measured_ids)
    mode = np.concatenate([np.full(n_p, PREDICT_PLAN, np.int8),
                           np.full(n_b, PREDICT_BOOKED, np.int8),
                           np.full(n_m, PREDICT_MEASURED, np.int8)])
    return Prediction(ids, out, valid, mode, float(now_s), float(step_s))


def loss_arrays(xyz_m: np.ndarray, valid: np.ndarray, h_m: float = 30.0,
                v_m: float = 10.0, cell_m: float | None = None):
    """Predicted losses from sampled predictions, as arrays (the kernel's front).

    Returns ``(i, j, k, u, h_m, v_m)`` with one row per drone pair ``i < j``: the first
    step ``k`` and fraction ``u`` of it at which they lose separation, sorted by (i, j).
    """
    xyz = np.ascontiguousarray(xyz_m, np.float64)
    val = np.ascontiguousarray(valid, np.bool_)
    if xyz.ndim != 3 or xyz.shape[2] != 3 or val.shape != xyz.shape[:2]:
        raise LiveInputError(f"xyz_m must be (n, K+1, 3) with valid (n, K+1), got "
                             f"{xyz.shape} and {val.shape}")
    if not (h_m > 0 and v_m > 0):
        raise LiveInputError("separation minima must be positive")
    cell = float(cell_m) if cell_m is not None else 2.0 * h_m
    if cell < h_m:
        raise LiveInputError(f"cell_m ({cell}) must be >= h_m ({h_m})")
    e = np.empty(0, np.int64)
    f = np.empty(0)
    empty = (e, e, e, f, f, f)
    if xyz.shape[0] < 2 or xyz.shape[1] < 2:
        return empty
    val = val & np.all(np.isfinite(xyz), axis=2)
    half = 0.5 * float(h_m)
    n = _count_entries(xyz, val, cell, half)
    key = np.empty(n, np.int64)
    drone = np.empty(n, np.int64)
    _fill_entries(xyz, val, cell, half, key, drone)
    order = np.argsort(key, kind="stable")
    key = key[order]
    drone = drone[order]
    c = _cell_pairs(key, drone, xyz, float(h_m), float(v_m), False, e, e, e, f, f, f)
    if c == 0:
        return empty
    oi = np.empty(c, np.int64)
    oj = np.empty(c, np.int64)
    ok_ = np.empty(c, np.int64)
    ou = np.empty(c)
    oh = np.empty(c)
    ov = np.empty(c)
    _cell_pairs(key, drone, xyz, float(h_m), float(v_m), True, oi, oj, ok_, ou, oh, ov)
    when = ok_ + ou
    order = np.lexsort((when, oj, oi))
    oi, oj, ok_, ou, oh, ov = (a[order] for a in (oi, oj, ok_, ou, oh, ov))
    first = np.r_[True, (oi[1:] != oi[:-1]) | (oj[1:] != oj[:-1])]
    return oi[first], oj[first], ok_[first], ou[first], oh[first], ov[first]


def detect_losses(pred: Prediction, h_m: float = 30.0, v_m: float = 10.0,
                  cell_m: float | None = None) -> list[PredictedLoss]:
    """Every predicted loss of separation (one per drone pair, its first moment).

    Examples
    --------
    >>> from skytwin.planner.trajectory import Trajectory
    >>> a = Trajectory("a", [[0, 0, 50], [600, 0, 50]], [0, 50])
    >>> b = Trajectory("b", [[600, 0, 55], [0, 0, 55]], [0, 50])
    >>> c = Trajectory("c", [[600, 0, 80], [0, 0, 80]], [0, 50])
    >>> p = predict(10.0, plan_ids=["a", "b", "c"], plan_trajs=[a, b, c])
    >>> [(x.flight_a, x.flight_b, round(x.t_s, 2)) for x in detect_losses(p)]
    [('a', 'b', 23.75)]
    """
    i, j, k, u, hh, vv = loss_arrays(pred.xyz_m, pred.valid, h_m, v_m, cell_m)
    ids = pred.flight_ids
    t = pred.t0_s + (k + u) * pred.step_s
    return [PredictedLoss(ids[a], ids[b], float(tt), float(x), float(y))
            for a, b, tt, x, y in zip(i.tolist(), j.tolist(), t.tolist(), hh.tolist(),
                                      vv.tolist(), strict=True)]
