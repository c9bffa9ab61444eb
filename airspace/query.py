"""Grid-code queries on a twin: which codes are blocked, and by what.

Regulators ask two questions of the twin in grid-code terms:

* :func:`blocked_codes` -- which codes (H3 cell x altitude layer, AMSL) inside an area and
  altitude band are blocked by a building or by a no-fly volume (active at a time, or at
  any time when no time is given);
* :func:`what_blocks` -- for one code, every building and zone that blocks it.

A code is blocked by a building when its prism (cell polygon x layer) overlaps the
building's volume, footprint x [ground, top] (optionally inflated by a clearance:
horizontal distance < clearance and below top + clearance, the planner's protected
volume). It is blocked by a zone when the prism overlaps the zone's volume (AGL limits
converted with the twin's ground under the cell: the band is widened to the min/max ground
there, so the answer is conservative). Overlap, never centre-in-cell: cells come from
:func:`airspace.gridcode.cells_touching_polygon` and the per-cell tests use the cell's
exact boundary polygon projected into the local frame.

Only AMSL codes are answered here (the twin's heights are AMSL); an AGL code is converted
by the caller with the ground height if needed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import shapely

from skytwin.airspace.errors import GridCodeError
from skytwin.airspace.gridcode import DEFAULT_LAYER_M, DEFAULT_RES, GridCode, cell_polygon, \
    cells_touching_polygon, layers_overlapping

__all__ = ["Blocker", "blocked_codes", "what_blocks"]


@dataclass(frozen=True, order=True)
class Blocker:
    """What blocks a code: ``kind`` is ``"building"`` or ``"zone"``."""

    kind: str
    id: str


def _local_polys(twin, cells):
    polys = [cell_polygon(c) for c in cells]
    return [shapely.transform(p, lambda xy: np.column_stack(
        twin.frame.to_local(xy[:, 0], xy[:, 1]))) for p in polys]


def _ground_range(twin, poly_local):
    g = twin.grid
    x0, y0, x1, y1 = poly_local.bounds
    i0 = int(np.clip(math.floor((x0 - g.x0_m) / g.dx_m), 0, g.nx - 1))
    i1 = int(np.clip(math.floor((x1 - g.x0_m) / g.dx_m), 0, g.nx - 1))
    j0 = int(np.clip(math.floor((y0 - g.y0_m) / g.dx_m), 0, g.ny - 1))
    j1 = int(np.clip(math.floor((y1 - g.y0_m) / g.dx_m), 0, g.ny - 1))
    sub = twin.ground_m[i0:i1 + 1, j0:j1 + 1]
    return float(sub.min()), float(sub.max())


def _blockers_by_cell(twin, zones, cells, t_s, clearance_m):
    """For each cell: list of (Blocker, z_lo_m, z_hi_m) volumes overlapping its column."""
    polys = _local_polys(twin, cells)
    out = [[] for _ in cells]
    if twin.buildings:
        tree = twin.index
        if clearance_m > 0:
            ci, bi = tree.query(polys, predicate="dwithin", distance=clearance_m)
        else:
            ci, bi = tree.query(polys, predicate="intersects")
        for c, b in zip(ci, bi, strict=True):
            bld = twin.buildings[b]
            if clearance_m > 0 and float(shapely.distance(polys[c], bld.footprint)) \
                    >= clearance_m:
                continue  # dwithin is "<="; the protected volume is "<"
            out[c].append((Blocker("building", str(bld.id)), min(bld.ground_m, bld.base_m),
                           bld.top_m + clearance_m))
    if zones is not None:
        active = zones.local_zones(t_s, t_s) if t_s is not None else zones.local_zones()
        for lz in active:
            for c, poly in enumerate(polys):
                if lz.distance_to_geom(poly) > 0.0:
                    continue
                g_lo, g_hi = _ground_range(twin, poly)
                lo, hi = lz.band_amsl(g_lo, g_hi)
                out[c].append((Blocker("zone", lz.id), lo, hi))
    return out


def blocked_codes(twin, area_lonlat, z_lo_m: float, z_hi_m: float, *, zones=None,
                  t_s: float | None = None, res: int = DEFAULT_RES,
                  layer_m: float = DEFAULT_LAYER_M, clearance_m: float = 0.0,
                  max_codes: int = 200_000) -> dict[GridCode, tuple[Blocker, ...]]:
    """Codes in an area and AMSL band that a building or an active zone blocks.

    Parameters
    ----------
    twin : airspace.twin.Twin
    area_lonlat : bbox ``(lon_min, lat_min, lon_max, lat_max)``, ring or Polygon
    z_lo_m, z_hi_m : float
        Altitude band [m AMSL], half-open.
    zones : airspace.zones.ZoneLayer, optional
    t_s : float, optional
        Only zones active at this time [Unix s]; all zones when omitted.
    res, layer_m : int, float
        Code resolution and layer thickness.
    clearance_m : float
        Inflate buildings by this clearance (0: the buildings themselves).
    max_codes : int
        Refuse queries that could return more codes (GridCodeError).

    Returns
    -------
    dict
        ``GridCode -> (Blocker, ...)`` for every blocked code (sorted blockers).
    """
    if not z_hi_m > z_lo_m:
        raise GridCodeError(f"altitude band must have z_hi_m > z_lo_m, got {z_lo_m}, {z_hi_m}")
    layers = layers_overlapping(z_lo_m, z_hi_m, layer_m)
    cells = sorted(cells_touching_polygon(area_lonlat, res, max_cells=max_codes))
    if len(cells) * len(layers) > max_codes:
        raise GridCodeError(f"query covers {len(cells) * len(layers)} codes, more than "
                            f"max_codes={max_codes}; narrow the area or the band")
    per_cell = _blockers_by_cell(twin, zones, cells, t_s, clearance_m)
    out: dict[GridCode, set] = {}
    for cell, vols in zip(cells, per_cell, strict=True):
        for blk, lo, hi in vols:
            # layer n covers [n*h, (n+1)*h): overlaps [lo, hi] when n*h <= hi and
            # (n+1)*h > lo
            for n in layers:
                if n * layer_m <= hi and (n + 1) * layer_m > lo:
                    out.setdefault(GridCode(cell, n, layer_m, "AMSL"), set()).add(blk)
    return {c: tuple(sorted(b)) for c, b in sorted(out.items())}


def what_blocks(twin, code: GridCode | str, *, zones=None, t_s: float | None = None,
                clearance_m: float = 0.0) -> tuple[Blocker, ...]:
    """Every building and (active) zone whose volume overlaps the code's prism."""
    if isinstance(code, str):
        code = GridCode.parse(code)
    if code.reference != "AMSL":
        raise GridCodeError(f"{code}: only AMSL codes can be checked against the twin "
                            "(its heights are AMSL); convert the AGL code first")
    lo, hi = code.z_range_m
    per = _blockers_by_cell(twin, zones, [code.cell], t_s, clearance_m)[0]
    return tuple(sorted({b for b, vlo, vhi in per if lo <= vhi and hi > vlo}))
