"""Slow, obviously correct oracles for airspace.raster (shapely per cell).

Each function asks shapely, cell by cell, the question the kernel answers for all cells
at once. Only for tests: quadratic in the grid size.
"""

from __future__ import annotations

import numpy as np
import shapely

__all__ = ["cell_boxes", "clear_top_oracle", "shapely_rasterize", "top_oracle",
           "touched_oracle"]


def cell_boxes(x0_m, y0_m, d_m, nx, ny):
    """(nx, ny) object array of closed cell squares."""
    i, j = np.meshgrid(np.arange(nx), np.arange(ny), indexing="ij")
    return shapely.box(x0_m + i * d_m, y0_m + j * d_m, x0_m + (i + 1) * d_m,
                       y0_m + (j + 1) * d_m)


def touched_oracle(poly, x0_m, y0_m, d_m, nx, ny):
    """(nx, ny) bool: ``shapely.box(cell).intersects(poly)``."""
    return shapely.intersects(cell_boxes(x0_m, y0_m, d_m, nx, ny), poly)


def top_oracle(polys, tops_m, x0_m, y0_m, d_m, nx, ny):
    """(nx, ny) float: max top of the polygons intersecting each cell, -inf elsewhere."""
    boxes = cell_boxes(x0_m, y0_m, d_m, nx, ny)
    out = np.full((nx, ny), -np.inf)
    for p, t in zip(polys, tops_m, strict=True):
        hit = shapely.intersects(boxes, p)
        out[hit] = np.maximum(out[hit], t)
    return out


def clear_top_oracle(polys, tops_m, clearance_m, x0_m, y0_m, d_m, nx, ny):
    """(nx, ny) float: max ``top + c`` of polygons within distance ``c`` of each cell."""
    boxes = cell_boxes(x0_m, y0_m, d_m, nx, ny)
    out = np.full((nx, ny), -np.inf)
    for p, t in zip(polys, tops_m, strict=True):
        near = shapely.distance(boxes, p) <= clearance_m
        out[near] = np.maximum(out[near], t + clearance_m)
    return out


def shapely_rasterize(polys, tops_m, clearance_m, x0_m, y0_m, d_m, nx, ny):
    """The straightforward baseline for benchmarks: per building, per bbox cell.

    For every building, the cells of its bounding box expanded by the clearance are
    tested with ``shapely.intersects`` (touched, -> top) and ``shapely.dwithin``
    (clearance, -> top + c). Returns ``(top, clear_top)`` as (nx, ny) float32 with -inf
    where nothing reaches.
    """
    top = np.full((nx, ny), -np.inf, dtype=np.float32)
    ctop = np.full((nx, ny), -np.inf, dtype=np.float32)
    for p, t in zip(polys, tops_m, strict=True):
        minx, miny, maxx, maxy = p.bounds
        i0 = max(0, int(np.floor((minx - clearance_m - x0_m) / d_m)) - 1)
        i1 = min(nx, int(np.floor((maxx + clearance_m - x0_m) / d_m)) + 2)
        j0 = max(0, int(np.floor((miny - clearance_m - y0_m) / d_m)) - 1)
        j1 = min(ny, int(np.floor((maxy + clearance_m - y0_m) / d_m)) + 2)
        if i0 >= i1 or j0 >= j1:
            continue
        i, j = np.meshgrid(np.arange(i0, i1), np.arange(j0, j1), indexing="ij")
        boxes = shapely.box(x0_m + i * d_m, y0_m + j * d_m, x0_m + (i + 1) * d_m,
                            y0_m + (j + 1) * d_m)
        shapely.prepare(p)
        hit = shapely.intersects(p, boxes)
        near = shapely.dwithin(p, boxes, clearance_m) if clearance_m > 0 else hit
        sub = top[i0:i1, j0:j1]
        sub[hit] = np.maximum(sub[hit], t)
        sub = ctop[i0:i1, j0:j1]
        sub[near] = np.maximum(sub[near], t + clearance_m)
    return top, ctop
