"""A 4D trajectory: waypoints in the local frame with a time at each.

This is the plain record shared by timing (which makes trajectories), conflict detection
and deconfliction (which compare and shift them) and the server (which stores them).
Between two waypoints a drone flies a straight line at constant speed, so the position at
any time is the linear interpolation of the neighbouring waypoints.

Units: ``xyz_m`` is ``(n, 3) float64`` local frame metres (x east, y north, z [m AMSL]);
``t_s`` is ``(n,) float64`` seconds on a common clock (seconds since the Unix epoch in the
service, since scenario start in fixtures), non-decreasing (equal times are allowed for a
hover at one point but not for a move).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["Trajectory"]


@dataclass(frozen=True)
class Trajectory:
    """One flight's 4D path (see module docstring).

    Attributes
    ----------
    flight_id : str
    xyz_m : (n, 3) float64 [m], local frame, z AMSL
    t_s : (n,) float64 [s], non-decreasing
    priority : float
        Weight of this flight's delay in deconfliction (higher = more important).
    max_delay_s : float
        Largest departure delay the operator accepts.
    """

    flight_id: str
    xyz_m: np.ndarray
    t_s: np.ndarray
    priority: float = 1.0
    max_delay_s: float = 600.0
    meta: dict = field(default_factory=dict, compare=False)

    def __post_init__(self):
        xyz = np.ascontiguousarray(self.xyz_m, dtype=np.float64)
        t = np.ascontiguousarray(self.t_s, dtype=np.float64)
        if xyz.ndim != 2 or xyz.shape[1] != 3 or xyz.shape[0] < 2:
            raise ValueError(f"flight {self.flight_id}: xyz_m must be (n>=2, 3), "
                             f"got {xyz.shape}")
        if t.shape != (xyz.shape[0],):
            raise ValueError(f"flight {self.flight_id}: t_s must have one time per "
                             f"waypoint ({xyz.shape[0]}), got {t.shape}")
        # ndarray methods, not np.all/np.any/np.diff: the same tests without their
        # Python-level dispatch (a booking builds several trajectories)
        if not (np.isfinite(xyz).all() and np.isfinite(t).all()):
            raise ValueError(f"flight {self.flight_id}: non-finite coordinate or time")
        if (t[1:] < t[:-1]).any():       # = diff < 0 for finite times
            raise ValueError(f"flight {self.flight_id}: times must not decrease")
        object.__setattr__(self, "xyz_m", xyz)
        object.__setattr__(self, "t_s", t)

    @property
    def t_start_s(self) -> float:
        return float(self.t_s[0])

    @property
    def t_end_s(self) -> float:
        return float(self.t_s[-1])

    @property
    def duration_s(self) -> float:
        return float(self.t_s[-1] - self.t_s[0])

    @property
    def length_m(self) -> float:
        return float(np.linalg.norm(np.diff(self.xyz_m, axis=0), axis=1).sum())

    def shifted(self, delay_s: float = 0.0, dz_m: float = 0.0) -> Trajectory:
        """A copy departing ``delay_s`` later, with the cruise raised by ``dz_m``.

        The first and last waypoints (take-off and landing on the ground) keep their
        height; every waypoint in between is raised by ``dz_m``. When the take-off and
        landing legs are vertical (as the planner makes them), the flight is re-timed so
        that it climbs and descends the extra ``dz_m`` at the same vertical speeds as
        before: every time after take-off moves by ``dz_m / climb speed`` and the landing
        by ``dz_m / descent speed`` more, so no speed limit is broken by a layer change.

        Examples
        --------
        >>> t = Trajectory("f", [[0, 0, 0], [0, 0, 40], [100, 0, 40], [100, 0, 0]],
        ...                [0, 10, 20, 30])   # climbs 4 m/s, descends 4 m/s
        >>> t.shifted(5.0, 20.0).t_s.tolist()
        [5.0, 20.0, 30.0, 45.0]
        """
        xyz = self.xyz_m.copy()
        t = self.t_s + delay_s
        if dz_m:
            xyz[1:-1, 2] += dz_m
            n = len(xyz)
            up_dt = self.t_s[1] - self.t_s[0]
            dn_dt = self.t_s[-1] - self.t_s[-2]
            up_dz = self.xyz_m[1, 2] - self.xyz_m[0, 2]
            dn_dz = self.xyz_m[-2, 2] - self.xyz_m[-1, 2]
            vertical = (n >= 4 and np.array_equal(self.xyz_m[0, :2], self.xyz_m[1, :2])
                        and np.array_equal(self.xyz_m[-1, :2], self.xyz_m[-2, :2])
                        and up_dt > 0 and dn_dt > 0 and up_dz > 0 and dn_dz > 0)
            if vertical:
                t = t.copy()
                t[1:] += dz_m * up_dt / up_dz
                t[-1] += dz_m * dn_dt / dn_dz
        return Trajectory(self.flight_id, xyz, t, self.priority, self.max_delay_s,
                          dict(self.meta))

    def position_at(self, t_s: float) -> np.ndarray:
        """Position ``(3,)`` at time ``t_s`` (clamped to the first and last waypoint)."""
        return np.array([np.interp(t_s, self.t_s, self.xyz_m[:, c]) for c in range(3)])
