"""The twin's voxel grid: where each voxel lies in the local frame.

A :class:`GridSpec` maps integer voxel indices ``(i, j, k)`` to boxes in the local frame:
column ``(i, j)`` covers ``[x0_m + i*dx_m, x0_m + (i+1)*dx_m) x [y0_m + j*dx_m, ...)``
and layer ``k`` covers ``[z0_m + k*dz_m, z0_m + (k+1)*dz_m)`` [m AMSL]. ``i`` grows east,
``j`` north, ``k`` up. Every array of the twin is indexed ``[i, j]`` or ``[i, j, k]``.

Examples
--------
>>> g = GridSpec(x0_m=-10.0, y0_m=-10.0, z0_m=0.0, dx_m=2.0, dz_m=2.0, nx=10, ny=10, nz=5)
>>> g.column_of(0.5, -9.0)
(5, 0)
>>> g.layer_of(3.9)
1
>>> g.voxel_centre(5, 0, 1)
(1.0, -9.0, 3.0)
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from skytwin.airspace.errors import OutsideTwinError

__all__ = ["GridSpec"]


@dataclass(frozen=True, slots=True)
class GridSpec:
    """Placement and size of a voxel grid in a local frame (see module docstring)."""

    x0_m: float
    y0_m: float
    z0_m: float
    dx_m: float
    dz_m: float
    nx: int
    ny: int
    nz: int

    def __post_init__(self):
        if not (self.dx_m > 0 and self.dz_m > 0):
            raise ValueError(f"resolution must be positive, got dx_m={self.dx_m}, "
                             f"dz_m={self.dz_m}")
        if min(self.nx, self.ny, self.nz) <= 0:
            raise ValueError(f"grid must be non-empty, got {self.nx}x{self.ny}x{self.nz}")

    # extents ----------------------------------------------------------------------
    @property
    def x1_m(self) -> float:
        return self.x0_m + self.nx * self.dx_m

    @property
    def y1_m(self) -> float:
        return self.y0_m + self.ny * self.dx_m

    @property
    def z1_m(self) -> float:
        return self.z0_m + self.nz * self.dz_m

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.nx, self.ny, self.nz)

    def contains(self, x_m: float, y_m: float, z_m: float | None = None) -> bool:
        """Whether a local point lies inside the grid (z optional)."""
        ok = self.x0_m <= x_m < self.x1_m and self.y0_m <= y_m < self.y1_m
        if z_m is not None:
            ok = ok and self.z0_m <= z_m < self.z1_m
        return ok

    # index <-> position ---------------------------------------------------------------
    def column_of(self, x_m: float, y_m: float) -> tuple[int, int]:
        """Column ``(i, j)`` holding local point ``(x_m, y_m)``.

        Raises
        ------
        OutsideTwinError
            When the point is outside the grid.
        """
        if not self.contains(x_m, y_m):
            raise OutsideTwinError(
                f"point x={x_m:.2f} m, y={y_m:.2f} m is outside the twin "
                f"(x in [{self.x0_m:.1f}, {self.x1_m:.1f}), "
                f"y in [{self.y0_m:.1f}, {self.y1_m:.1f}))")
        return (int(math.floor((x_m - self.x0_m) / self.dx_m)),
                int(math.floor((y_m - self.y0_m) / self.dx_m)))

    def layer_of(self, z_m: float) -> int:
        """Layer ``k`` holding height ``z_m`` [m AMSL].

        Raises
        ------
        OutsideTwinError
            When the height is below or above the grid.
        """
        if not (self.z0_m <= z_m < self.z1_m):
            raise OutsideTwinError(
                f"height {z_m:.2f} m AMSL is outside the twin's layers "
                f"[{self.z0_m:.1f}, {self.z1_m:.1f}) m AMSL")
        return int(math.floor((z_m - self.z0_m) / self.dz_m))

    def voxel_centre(self, i: int, j: int, k: int) -> tuple[float, float, float]:
        """Local centre ``(x_m, y_m, z_m)`` of voxel ``(i, j, k)``."""
        return (self.x0_m + (i + 0.5) * self.dx_m,
                self.y0_m + (j + 0.5) * self.dx_m,
                self.z0_m + (k + 0.5) * self.dz_m)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> GridSpec:
        return cls(**{k: d[k] for k in cls.__slots__})
