"""Turn a route polyline into a 4D trajectory (a time at each waypoint).

Flight model
------------
A route is take-off (vertical climb from the ground at the start), cruise (straight
segments, climbing or descending as the route needs) and landing (vertical descent to
the ground at the goal). On each segment the drone flies at constant velocity; the time
of a segment is the largest of the times its horizontal part takes at ``cruise_mps`` and
its vertical part takes at ``climb_mps`` (going up) or ``descent_mps`` (going down), so
no speed limit is ever exceeded. Acceleration is neglected (a few metres at these
speeds); the conflict detector's time buffer absorbs it.

Defaults (``SpeedProfile()``) are typical of multirotor delivery drones: 12 m/s cruise,
4 m/s climb, 3 m/s descent (e.g. DJI FlyCart 30: ~20 m/s max, 5 m/s ascent, 4 m/s
descent; cruise and vertical speeds are kept below the maxima on purpose).

Examples
--------
>>> xyz = [[0, 0, 0], [0, 0, 40], [120, 0, 40], [120, 0, 0]]
>>> traj = to_trajectory("f1", xyz, depart_s=100.0)
>>> [round(float(t), 1) for t in traj.t_s]
[100.0, 110.0, 120.0, 133.3]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from skytwin.planner.trajectory import Trajectory

__all__ = ["SpeedProfile", "segment_times_s", "to_trajectory"]


@dataclass(frozen=True)
class SpeedProfile:
    """Speed limits of the flight model [m/s]."""

    cruise_mps: float = 12.0
    climb_mps: float = 4.0
    descent_mps: float = 3.0

    def __post_init__(self):
        for name in ("cruise_mps", "climb_mps", "descent_mps"):
            v = getattr(self, name)
            if not (np.isfinite(v) and v > 0):
                raise ValueError(f"{name} must be a positive speed, got {v}")


def segment_times_s(xyz_m, speeds: SpeedProfile = SpeedProfile()) -> np.ndarray:
    """Duration of each segment ``(n-1,)`` [s] under the flight model."""
    xyz = np.asarray(xyz_m, dtype=np.float64)
    d = np.diff(xyz, axis=0)
    horiz = np.hypot(d[:, 0], d[:, 1]) / speeds.cruise_mps
    vert = np.where(d[:, 2] >= 0, d[:, 2] / speeds.climb_mps, -d[:, 2] / speeds.descent_mps)
    return np.maximum(horiz, vert)


def to_trajectory(flight_id: str, xyz_m, depart_s: float,
                  speeds: SpeedProfile = SpeedProfile(), **kw) -> Trajectory:
    """A :class:`Trajectory` leaving at ``depart_s`` along the polyline ``xyz_m``."""
    xyz = np.asarray(xyz_m, dtype=np.float64)
    t = np.concatenate([[0.0], np.cumsum(segment_times_s(xyz, speeds))]) + float(depart_s)
    return Trajectory(flight_id, xyz, t, **kw)
