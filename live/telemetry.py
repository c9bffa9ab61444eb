"""Validation of position reports: one status per report, never a dropped stream.

Definition
----------
A position report says where one drone was at one time: ``t_s`` [s since the Unix
epoch], WGS84 ``lon_deg``/``lat_deg``, ``alt_m`` [m AMSL], optionally a velocity
``(ve, vn, vu)`` [m/s, east/north/up] and a 1-sigma accuracy ``acc_h_m``/``acc_v_m``
(NaN = not given). Every report gets one :class:`ReportStatus`; only ``OK`` reports
change the live picture. The checks, in order (the first failing one is the status):

1. ``UNKNOWN_FLIGHT`` / ``FOREIGN_FLIGHT`` / ``NOT_ACTIVE``: decided by the caller (the
   server knows the flights and the caller's identity); the caller passes them in
   ``pre_status`` and they are kept.
2. ``NON_FINITE``: a NaN or infinity in time, position, or a given velocity/accuracy.
3. ``OUT_OF_RANGE``: lon outside [-180, 180], lat outside [-90, 90], altitude outside
   [``min_alt_m``, ``max_alt_m``], a negative accuracy, a speed above twice the
   physical maximum.
4. ``IN_FUTURE``: ``t_s > now + max_future_s`` (clock skew allowance).
5. ``TOO_OLD``: ``t_s < now - max_age_s`` (the live picture needs fresh data).
6. ``STALE``: not later than the newest accepted report of the same flight (a duplicate
   or out-of-order report): acknowledged, not applied. Not an error.
7. ``IMPOSSIBLE_JUMP``: from the newest accepted report of the same flight, the
   horizontal move exceeds ``max_h_speed_mps * dt + jump_allowance_m + 2 acc_h`` (and
   likewise vertically): no drone can fly it; the position is not applied. The
   allowance grows with ``dt``, so after a real position reset the flight is accepted
   again after at most ``distance / max speed`` seconds.

Defaults (:class:`TelemetryLimits`) and basis: F3411 Remote ID requires >= 1 Hz with a
data age of at most 1 s, so 30 s of age is far past useful; 2 s of future covers NTP-less
clock skew on cheap flight controllers; 35 m/s horizontal and 15 m/s vertical exceed the
fastest small delivery multirotors (DJI FlyCart 30: 20 m/s, 5 m/s ascent) by a wide
margin, and 10 m covers GNSS error between two fixes.

Algorithm
---------
1. Vectorised field checks (steps 2-5) in numpy over the whole batch.
2. Reports sorted stably by (flight slot, time); one numba pass (:func:`_sequence`)
   applies steps 6-7 against each flight's newest accepted report, updating the
   per-flight state (``last_t_s``, ``last_xyz_m``) in place as reports are accepted, so
   a batch holding several reports of one drone is checked report by report.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import IntEnum

import numpy as np
from numba import njit

from skytwin.airspace._jit import JIT
from skytwin.live.errors import LiveInputError

__all__ = ["ReportBatch", "ReportStatus", "TelemetryLimits", "TrackState",
           "validate_reports"]


class ReportStatus(IntEnum):
    """Per-report status codes (stable numbers: they go on the wire)."""

    OK = 0
    UNKNOWN_FLIGHT = 1
    FOREIGN_FLIGHT = 2
    NOT_ACTIVE = 3
    NON_FINITE = 4
    OUT_OF_RANGE = 5
    IN_FUTURE = 6
    TOO_OLD = 7
    STALE = 8
    IMPOSSIBLE_JUMP = 9


@dataclass(frozen=True)
class TelemetryLimits:
    """Validation limits (see module docstring for the basis)."""

    max_future_s: float = 2.0
    max_age_s: float = 30.0
    max_h_speed_mps: float = 35.0
    max_v_speed_mps: float = 15.0
    jump_allowance_m: float = 10.0
    min_alt_m: float = -500.0
    max_alt_m: float = 10_000.0

    def __post_init__(self):
        for k, v in self.__dict__.items():
            if not (isinstance(v, (int, float)) and math.isfinite(v)):
                raise LiveInputError(f"TelemetryLimits.{k} must be finite, got {v!r}")
        if min(self.max_future_s, self.max_age_s, self.jump_allowance_m) < 0 or \
                min(self.max_h_speed_mps, self.max_v_speed_mps) <= 0:
            raise LiveInputError("TelemetryLimits: times, speeds and allowance must be "
                                 "positive")


@dataclass
class ReportBatch:
    """A batch of reports as arrays (one row per report).

    Attributes
    ----------
    slot : (n,) int64
        Index of the flight in the caller's :class:`TrackState` (-1 when unknown).
    t_s : (n,) float64 [s]
    lon_deg, lat_deg, alt_m : (n,) float64 (alt [m AMSL])
    xyz_m : (n, 3) float64 [m] local frame (NaN where the lon/lat are unusable)
    vel_mps : (n, 3) float64 east/north/up (NaN rows = not given)
    acc_h_m, acc_v_m : (n,) float64 (NaN = not given)
    """

    slot: np.ndarray
    t_s: np.ndarray
    lon_deg: np.ndarray
    lat_deg: np.ndarray
    alt_m: np.ndarray
    xyz_m: np.ndarray
    vel_mps: np.ndarray
    acc_h_m: np.ndarray
    acc_v_m: np.ndarray

    def __len__(self) -> int:
        return int(self.t_s.shape[0])

    @classmethod
    def from_wgs84(cls, frame, slot, t_s, lon_deg, lat_deg, alt_m, vel_mps=None,
                   acc_h_m=None, acc_v_m=None) -> ReportBatch:
        """Build a batch, converting usable lon/lat to the local frame of ``frame``."""
        t = np.asarray(t_s, np.float64).ravel()
        n = t.shape[0]

        def col(a, fill=np.nan):
            if a is None:
                return np.full(n, fill)
            a = np.asarray(a, np.float64).ravel()
            if a.shape != (n,):
                raise LiveInputError(f"report arrays must all have length {n}, got "
                                     f"{a.shape[0]}")
            return a

        lon, lat, alt = col(lon_deg), col(lat_deg), col(alt_m)
        vel = (np.full((n, 3), np.nan) if vel_mps is None
               else np.asarray(vel_mps, np.float64).reshape(n, 3))
        xyz = np.full((n, 3), np.nan)
        ok = (np.isfinite(lon) & np.isfinite(lat) & (np.abs(lon) <= 180)
              & (np.abs(lat) <= 90))
        if ok.any():
            x, y = frame.to_local(lon[ok], lat[ok])
            xyz[ok, 0] = x
            xyz[ok, 1] = y
        xyz[:, 2] = alt
        return cls(np.asarray(slot, np.int64).ravel(), t, lon, lat, alt, xyz, vel,
                   col(acc_h_m), col(acc_v_m))


class TrackState:
    """Newest accepted report per flight slot (what jumps and staleness compare with).

    Attributes
    ----------
    last_t_s : (capacity,) float64, NaN = none yet
    last_xyz_m : (capacity, 3) float64
    """

    def __init__(self, capacity: int = 1024):
        self.last_t_s = np.full(int(capacity), np.nan)
        self.last_xyz_m = np.full((int(capacity), 3), np.nan)

    def ensure(self, capacity: int) -> None:
        """Grow to hold at least ``capacity`` slots (new slots empty)."""
        n = self.last_t_s.shape[0]
        if capacity > n:
            m = max(int(capacity), 2 * n)
            self.last_t_s = np.concatenate([self.last_t_s, np.full(m - n, np.nan)])
            self.last_xyz_m = np.vstack([self.last_xyz_m, np.full((m - n, 3), np.nan)])

    def clear(self, slot: int) -> None:
        self.last_t_s[slot] = np.nan
        self.last_xyz_m[slot] = np.nan


@njit(**JIT)
def _sequence(order, slot, t, xyz, acc_h, acc_v, status, last_t, last_xyz,
              vmax_h, vmax_v, allow_m):
    """Staleness and jump checks in (slot, time) order; accepted reports update state.

    order : (n,) int64 processing order; slot : (n,) int64; t : (n,) float64;
    xyz : (n, 3) float64; acc_h, acc_v : (n,) float64 (NaN = 0); status : (n,) int8,
    read (non-zero = already rejected) and written; last_t : (m,) float64 and
    last_xyz : (m, 3) float64 per slot, updated in place.
    """
    for q in range(order.shape[0]):
        k = order[q]
        if status[k] != 0:
            continue
        s = slot[k]
        lt = last_t[s]
        if lt == lt:  # not NaN
            dt = t[k] - lt
            if dt <= 0.0:
                status[k] = 8
                continue
            ah = acc_h[k] if acc_h[k] == acc_h[k] else 0.0
            av = acc_v[k] if acc_v[k] == acc_v[k] else 0.0
            dx = xyz[k, 0] - last_xyz[s, 0]
            dy = xyz[k, 1] - last_xyz[s, 1]
            dz = abs(xyz[k, 2] - last_xyz[s, 2])
            if math.sqrt(dx * dx + dy * dy) > vmax_h * dt + allow_m + 2.0 * ah or \
                    dz > vmax_v * dt + allow_m + 2.0 * av:
                status[k] = 9
                continue
        last_t[s] = t[k]
        last_xyz[s, 0] = xyz[k, 0]
        last_xyz[s, 1] = xyz[k, 1]
        last_xyz[s, 2] = xyz[k, 2]


def validate_reports(batch: ReportBatch, state: TrackState, now_s: float,
                     limits: TelemetryLimits | None = None,
                     pre_status=None) -> np.ndarray:
    """Status of every report of ``batch`` (see module docstring); updates ``state``.

    Parameters
    ----------
    batch : ReportBatch
    state : TrackState
        Per-slot newest accepted report; updated in place by accepted reports.
    now_s : float
        The service clock [s].
    limits : TelemetryLimits, optional
    pre_status : (n,) int array, optional
        Statuses the caller already decided (unknown / foreign / not active); non-zero
        entries are kept. Reports with ``slot < 0`` and no status become
        ``UNKNOWN_FLIGHT``.

    Returns
    -------
    (n,) int8 array of :class:`ReportStatus` values.

    Examples
    --------
    >>> from skytwin.airspace.frame import Frame
    >>> fr = Frame(24.94, 60.17)
    >>> st = TrackState(4)
    >>> b = ReportBatch.from_wgs84(fr, [0, 0, 0, 1], [100, 101, 102, 100],
    ...                            [24.94, 24.94, 24.96, 24.94], [60.17] * 4,
    ...                            [30, 31, float("nan"), 30])
    >>> [ReportStatus(s).name for s in validate_reports(b, st, now_s=101.5)]
    ['OK', 'OK', 'NON_FINITE', 'OK']
    """
    lim = limits or TelemetryLimits()
    n = len(batch)
    status = np.zeros(n, np.int8) if pre_status is None else \
        np.asarray(pre_status, np.int8).copy()
    if status.shape != (n,):
        raise LiveInputError(f"pre_status must have length {n}")
    if n == 0:
        return status
    slot = batch.slot
    status[(status == 0) & (slot < 0)] = ReportStatus.UNKNOWN_FLIGHT
    if np.any(slot >= state.last_t_s.shape[0]):
        state.ensure(int(slot.max()) + 1)
    vel_given = ~np.all(np.isnan(batch.vel_mps), axis=1)
    finite = (np.isfinite(batch.t_s) & np.isfinite(batch.lon_deg)
              & np.isfinite(batch.lat_deg) & np.isfinite(batch.alt_m)
              & (~vel_given | np.all(np.isfinite(batch.vel_mps), axis=1))
              & ~np.isinf(batch.acc_h_m) & ~np.isinf(batch.acc_v_m))
    free = status == 0
    status[free & ~finite] = ReportStatus.NON_FINITE
    with np.errstate(invalid="ignore"):
        vel = np.where(np.isfinite(batch.vel_mps), batch.vel_mps, 0.0)
        speed = np.where(vel_given, np.linalg.norm(vel, axis=1), 0.0)
        bad = ((np.abs(batch.lon_deg) > 180) | (np.abs(batch.lat_deg) > 90)
               | (batch.alt_m < lim.min_alt_m) | (batch.alt_m > lim.max_alt_m)
               | (batch.acc_h_m < 0) | (batch.acc_v_m < 0)
               | (speed > 2.0 * max(lim.max_h_speed_mps, lim.max_v_speed_mps))
               | ~np.all(np.isfinite(batch.xyz_m), axis=1))
        free = status == 0
        status[free & bad] = ReportStatus.OUT_OF_RANGE
        free = status == 0
        status[free & (batch.t_s > now_s + lim.max_future_s)] = ReportStatus.IN_FUTURE
        free = status == 0
        status[free & (batch.t_s < now_s - lim.max_age_s)] = ReportStatus.TOO_OLD
    order = np.lexsort((batch.t_s, slot)).astype(np.int64)
    _sequence(order, slot, batch.t_s, np.ascontiguousarray(batch.xyz_m), batch.acc_h_m,
              batch.acc_v_m, status, state.last_t_s, state.last_xyz_m,
              float(lim.max_h_speed_mps), float(lim.max_v_speed_mps),
              float(lim.jump_allowance_m))
    return status
