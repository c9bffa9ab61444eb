"""Slow, obviously correct twins of the zone kernels (tests only).

Every function here works cell by cell (or zone by zone) with shapely and plain Python.
"""

from __future__ import annotations

import numpy as np
import shapely
from shapely.geometry import Point, box


def zone_voxels_naive(lz, grid, ground_m, margin_m=0.0):
    """Boolean (nx, ny, nz) mask of touched voxels, per cell with shapely.

    A column is touched when ``shapely.distance(cell box, shape) <= margin`` (for a
    circle: distance to the centre <= radius + margin); in it, layer ``k`` is touched
    when ``[z0 + k dz, z0 + (k+1) dz)`` holds a height of ``[lo - margin,
    hi + margin]``.
    (shapely's vectorised ``box``/``distance`` evaluate every cell, one by one, in C.)
    """
    ii, jj = np.meshgrid(np.arange(grid.nx), np.arange(grid.ny), indexing="ij")
    cells = shapely.box(
        grid.x0_m + ii * grid.dx_m,
        grid.y0_m + jj * grid.dx_m,
        grid.x0_m + (ii + 1) * grid.dx_m,
        grid.y0_m + (jj + 1) * grid.dx_m,
    )
    if lz.centre_m is not None:
        d = shapely.distance(cells, Point(lz.centre_m)) - lz.radius_m
    else:
        d = shapely.distance(cells, lz.shape)
    mask = np.zeros((grid.nx, grid.ny, grid.nz), dtype=bool)
    for i, j in zip(*np.nonzero(d <= margin_m), strict=True):
        lo, hi = lz.band_amsl(float(ground_m[i, j]))
        lo -= margin_m
        hi += margin_m
        for k in range(grid.nz):
            a = grid.z0_m + k * grid.dz_m
            b = a + grid.dz_m
            if lo < b and hi >= a:  # some height of [lo, hi] in [a, b)
                mask[i, j, k] = True
    return mask


def cell_distance(lz, grid, i, j):
    """Horizontal distance [m] from column (i, j)'s rectangle to the zone's shape."""
    cell = box(
        grid.x0_m + i * grid.dx_m,
        grid.y0_m + j * grid.dx_m,
        grid.x0_m + (i + 1) * grid.dx_m,
        grid.y0_m + (j + 1) * grid.dx_m,
    )
    if lz.centre_m is not None:
        return max(0.0, shapely.distance(cell, Point(lz.centre_m)) - lz.radius_m)
    return shapely.distance(cell, lz.shape)


def volume_gap(lz, x, y, z, ground_m):
    """max(horizontal distance, vertical distance) from a point to the zone volume.

    This is the distance that ``margin_m`` bounds in ``segment_intersects`` (0 inside).
    """
    h = lz.distance_2d(x, y)
    lo, hi = lz.band_amsl(ground_m)
    v = max(lo - z, z - hi, 0.0)
    return max(h, v)


def segment_gap_sampled(lz, p0, p1, ground_m, n=4001):
    """Minimum :func:`volume_gap` over ``n`` evenly spaced points of the segment."""
    t = np.linspace(0.0, 1.0, n)
    x = p0[0] + t * (p1[0] - p0[0])
    y = p0[1] + t * (p1[1] - p0[1])
    z = p0[2] + t * (p1[2] - p0[2])
    pts = shapely.points(x, y)
    if lz.centre_m is not None:
        h = np.maximum(shapely.distance(pts, Point(lz.centre_m)) - lz.radius_m, 0.0)
    else:
        h = shapely.distance(pts, lz.shape)
    lo, hi = lz.band_amsl(ground_m)
    v = np.maximum(np.maximum(lo - z, z - hi), 0.0)
    return float(np.min(np.maximum(h, v)))


def in_box_naive(
    layer, min_lon, min_lat, max_lon, max_lat, z_lo_m, z_hi_m, t0_s, t1_s, ground_m=0.0
):
    """Brute force over every zone, no index."""
    geom = layer.local_box(min_lon, min_lat, max_lon, max_lat)
    out = []
    for z in layer.list():
        lz = layer.local(z.id)
        if not z.active_during(t0_s, t1_s):
            continue
        lo, hi = lz.band_amsl(ground_m)
        if z_hi_m is not None and lo > z_hi_m:
            continue
        if z_lo_m is not None and hi < z_lo_m:
            continue
        if lz.centre_m is not None:
            d = shapely.distance(geom, Point(lz.centre_m)) - lz.radius_m
        else:
            d = shapely.distance(geom, lz.shape)
        if d <= 0:
            out.append(z.id)
    return out


def at_point_naive(layer, x, y, z_amsl, t_s, ground_m):
    """Brute force containment of a local point over every zone."""
    out = []
    for z in layer.list():
        lz = layer.local(z.id)
        if t_s is not None and not z.active_during(t_s, t_s):
            continue
        lo, hi = lz.band_amsl(ground_m)
        if lo <= z_amsl <= hi and lz.distance_2d(x, y) <= 0:
            out.append(z.id)
    return out
