"""The airspace twin: per-column obstacle fields, the exact building index, save/load.

Design
------
A :class:`Twin` is what the planner, the grid codes and the zones work on. It holds

* the local :class:`~airspace.frame.Frame` and a :class:`~airspace.grid.GridSpec`,
* four per-column fields (2.5D, see :mod:`airspace.raster` for why and how):
  ``ground_m``, ``top_m``, ``clear_top_m`` (all ``(nx, ny) float32`` [m AMSL]) and
  ``floor_k`` (``(nx, ny) int16``): voxel ``(i, j, k)`` is blocked by buildings (or the
  ground) iff ``k < floor_k[i, j]``,
* the exact geometry (the :class:`~airspace.building.Building` list, their heights as
  arrays and a ``shapely.STRtree`` over the footprints) for exact clearance checks.

Protected volume (the rule the exact checker in ``planner/`` uses too): a point ``p`` is
too close to building ``b`` iff the horizontal distance from ``p`` to ``b``'s footprint is
``<= clearance_m`` and ``p.z <= b.top_m + clearance_m``. Columns are blocked from the
ground up (overhangs ignored), a conservative superset of the 3D Minkowski sum.

Ground: from the model's terrain samples when it has them (linear interpolation at the
cell centres, nearest sample outside their convex hull); else from the buildings'
``ground_m`` on the columns they touch (the highest, where several touch), spread to the
other columns by nearest neighbour (``scipy.ndimage.distance_transform_edt`` indices; on a
coarsened grid beyond ``FILL_CELLS`` columns); else 0.

Unknown heights: an obstacle whose data gives no height (``Building.height_source ==
"unknown"``, see :mod:`airspace.io.common`) is raised to the highest ground of the
twin plus ``ceiling_agl_m`` before rasterization, in the exact index too: its column is
blocked through every flyable layer (DESIGN: "an unknown height blocks the column
unless the user states an assumption"). The reader's audit is kept in ``meta["audit"]``.

Grid: covers the footprints' bounding box plus a margin (default ``clearance_m`` + 3
cells), aligned to multiples of ``resolution_m``; ``z0_m = floor(min ground)`` and the
layers reach ``max(max top + clearance, max ground + ceiling_agl_m)`` plus one layer.
Absurd sizes (more than ``MAX_EXTENT_M`` across, more than ``MAX_COLUMNS`` columns or
``MAX_VOXELS`` voxels) are refused with :class:`TwinTooLargeError` before anything is
allocated.

Files: :meth:`Twin.save` writes one ``.npz`` (arrays, footprints as WKB bytes with
offsets, metadata as UTF-8 JSON; no pickle) that :meth:`Twin.load` reads back
identically; ``compress=True`` deflates it (the 10 km synthetic twin: 347 MB raw, 21 MB
compressed). The objects' tags (what the model says about them: use, function, OSM
tags, storeys) and the reader's non-obstacle areas are saved too (JSON, and the areas'
footprints as WKB), so that a server started from a twin file derives the same zones
and estimates the same population as one started from the city model (issue 13);
files written before that load with no tags (no derived zones, every building of
unknown use).
"""

from __future__ import annotations

import dataclasses
import json
import math
import resource
import time
from pathlib import Path

import numpy as np
import shapely

from skytwin.airspace.building import Building, LoadResult
from skytwin.airspace.errors import OutsideTwinError
from skytwin.airspace.frame import Frame
from skytwin.airspace.grid import GridSpec
from skytwin.airspace.raster import (
    _coarse_mean_kernel,
    _fill_from_coarse_kernel,
    flatten_footprints,
    floor_layers,
    rasterize_footprints,
)

__all__ = [
    "FILL_CELLS",
    "MAX_COLUMNS",
    "MAX_EXTENT_M",
    "MAX_VOXELS",
    "Twin",
    "TwinTooLargeError",
    "build_twin",
]

MAX_EXTENT_M = 100_000.0
"""Largest twin side [m]: beyond this the local transverse Mercator frame is no longer
metric to the centimetre and the input is almost surely in the wrong CRS."""
MAX_COLUMNS = 100_000_000
"""Largest number of grid columns (about 2 GB of column fields and scratch)."""
MAX_VOXELS = 2**32
"""Largest number of voxels ``nx * ny * nz`` (about 4.3e9: a flat voxel index fits in
``uint32``; the voxels are never allocated densely, the columns bound the memory)."""

_FORMAT = "skytwin-twin/1"


class TwinTooLargeError(OutsideTwinError):
    """The requested twin would be absurdly large (extent, columns or voxels)."""


def _peak_mem_mb() -> float:
    """Peak resident set size of this process so far [MB] (Linux ``ru_maxrss`` is kB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


class Twin:
    """The airspace twin of one city model (see module docstring).

    Attributes
    ----------
    frame : Frame
    grid : GridSpec
    clearance_m, resolution_m, layer_m, ceiling_agl_m : float
    ground_m, top_m, clear_top_m : (nx, ny) float32 [m AMSL]
    floor_k : (nx, ny) int16
        First layer entirely above ``clear_top_m``; voxel ``(i, j, k)`` blocked iff
        ``k < floor_k[i, j]``.
    buildings : list of Building
    bld_top_m, bld_base_m, bld_ground_m : (n_buildings,) float64 [m AMSL]
    meta : dict
        ``source`` (list of paths), ``fmt``, ``counts``, ``skipped`` (list of
        ``{"object_id", "reason"}``), ``has_terrain``, ``build_s``, ``peak_mem_mb``.
    """

    def __init__(self, *, frame: Frame, grid: GridSpec, clearance_m: float,
                 resolution_m: float, layer_m: float, ceiling_agl_m: float, ground_m,
                 top_m, clear_top_m, floor_k, buildings: list[Building], meta: dict):
        self.frame = frame
        self.grid = grid
        self.clearance_m = float(clearance_m)
        self.resolution_m = float(resolution_m)
        self.layer_m = float(layer_m)
        self.ceiling_agl_m = float(ceiling_agl_m)
        self.areas: list[Building] = []
        self.ground_m = ground_m
        self.top_m = top_m
        self.clear_top_m = clear_top_m
        self.floor_k = floor_k
        self.buildings = list(buildings)
        self.bld_top_m = np.array([b.top_m for b in self.buildings], dtype=np.float64)
        self.bld_base_m = np.array([b.base_m for b in self.buildings], dtype=np.float64)
        self.bld_ground_m = np.array([b.ground_m for b in self.buildings],
                                     dtype=np.float64)
        self.meta = dict(meta)
        self._index = None
        self._footprints = None

    # -- exact geometry ---------------------------------------------------------------
    @property
    def footprints(self) -> np.ndarray:
        """Footprints as an object array of shapely geometries (index = building)."""
        if self._footprints is None:
            self._footprints = np.array([b.footprint for b in self.buildings],
                                        dtype=object)
        return self._footprints

    @property
    def index(self) -> shapely.STRtree:
        """Exact spatial index over the footprints (built on first use)."""
        if self._index is None:
            self._index = shapely.STRtree(self.footprints)
        return self._index

    def buildings_near(self, x_m: float, y_m: float, radius_m: float) -> np.ndarray:
        """Indices of the buildings whose footprint lies within ``radius_m`` of a point.

        Exact (shapely distance, footprint interior counts as distance 0).

        Returns
        -------
        (n,) int64, sorted.
        """
        if not (radius_m >= 0 and math.isfinite(radius_m)):
            raise ValueError(f"radius_m must be >= 0 and finite, got {radius_m}")
        if not self.buildings:
            return np.zeros(0, dtype=np.int64)
        idx = self.index.query(shapely.Point(float(x_m), float(y_m)),
                               predicate="dwithin", distance=float(radius_m))
        return np.sort(np.asarray(idx, dtype=np.int64))

    # -- voxel views ------------------------------------------------------------------
    def blocked_fraction(self) -> float:
        """Blocked voxels (buildings, clearance and below ground) over all voxels."""
        g = self.grid
        return float(np.sum(self.floor_k, dtype=np.int64)) / float(g.nx * g.ny * g.nz)

    def blocked_dense(self, i0: int, i1: int, j0: int, j1: int, k0: int = 0,
                      k1: int | None = None) -> np.ndarray:
        """Dense window ``[i0:i1, j0:j1, k0:k1]`` of the obstacle field.

        Returns
        -------
        (i1 - i0, j1 - j0, k1 - k0) uint8
            1 where blocked by buildings (with clearance) or below ground.

        Raises
        ------
        OutsideTwinError
            When the window is empty or not inside the grid.
        """
        g = self.grid
        k1 = g.nz if k1 is None else k1
        if not (0 <= i0 < i1 <= g.nx and 0 <= j0 < j1 <= g.ny and 0 <= k0 < k1 <= g.nz):
            raise OutsideTwinError(
                f"window [{i0}:{i1}, {j0}:{j1}, {k0}:{k1}] is empty or outside the grid "
                f"{g.nx}x{g.ny}x{g.nz}")
        ks = np.arange(k0, k1, dtype=np.int16)
        return (ks[None, None, :] < self.floor_k[i0:i1, j0:j1, None]).view(np.uint8)

    # -- reporting --------------------------------------------------------------------
    def bounds_wgs84(self) -> list[float]:
        """``[min_lon, min_lat, max_lon, max_lat]`` of the grid extent [deg]."""
        g = self.grid
        xs = np.array([g.x0_m, g.x1_m, g.x1_m, g.x0_m])
        ys = np.array([g.y0_m, g.y0_m, g.y1_m, g.y1_m])
        lon, lat = self.frame.to_wgs84(xs, ys)
        return [float(np.min(lon)), float(np.min(lat)), float(np.max(lon)),
                float(np.max(lat))]

    def summary(self) -> dict:
        """Plain-data summary (JSON-ready) of the twin for the CLI and the server."""
        g = self.grid
        return {
            "buildings": len(self.buildings),
            "skipped": len(self.meta.get("skipped", [])),
            "skipped_reasons": _reason_counts(self.meta.get("skipped", [])),
            "audit": self.meta.get("audit", []),
            "bounds_wgs84": self.bounds_wgs84(),
            "grid": {"nx": g.nx, "ny": g.ny, "nz": g.nz, "dx_m": g.dx_m, "dz_m": g.dz_m},
            "blocked_fraction": self.blocked_fraction(),
            "build_s": self.meta.get("build_s"),
            "peak_mem_mb": self.meta.get("peak_mem_mb"),
            "clearance_m": self.clearance_m,
        }

    # -- persistence ------------------------------------------------------------------
    def save(self, path, *, compress: bool = False) -> Path:
        """Write the twin to one ``.npz`` file (no pickle); returns the path.

        Parameters
        ----------
        path : str or Path
            Written as given (no suffix is added).
        compress : bool
            Deflate the arrays (smaller file, several seconds for a 10 km twin).
        """
        path = Path(path)
        wkb = shapely.to_wkb(self.footprints) if self.buildings else []
        lens = np.array([len(w) for w in wkb], dtype=np.int64)
        off = np.zeros(len(lens) + 1, dtype=np.int64)
        off[1:] = np.cumsum(lens)
        blob = np.frombuffer(b"".join(wkb), dtype=np.uint8)
        head = {
            "format": _FORMAT,
            "frame": [self.frame.lon0_deg, self.frame.lat0_deg],
            "grid": self.grid.to_dict(),
            "clearance_m": self.clearance_m,
            "resolution_m": self.resolution_m,
            "layer_m": self.layer_m,
            "ceiling_agl_m": self.ceiling_agl_m,
            "ids": [b.id for b in self.buildings],
            "kinds": [b.kind for b in self.buildings],
            "parent_ids": [b.parent_id for b in self.buildings],
            "height_sources": [b.height_source for b in self.buildings],
            "tags": [b.tags for b in self.buildings],
            "areas": [{"id": a.id, "kind": a.kind, "parent_id": a.parent_id,
                       "base_m": a.base_m, "top_m": a.top_m, "ground_m": a.ground_m,
                       "height_source": a.height_source, "tags": a.tags}
                      for a in self.areas],
            "meta": self.meta,
        }
        a_wkb = shapely.to_wkb([a.footprint for a in self.areas]) if self.areas else []
        a_off = np.zeros(len(a_wkb) + 1, dtype=np.int64)
        a_off[1:] = np.cumsum([len(w) for w in a_wkb])
        a_blob = np.frombuffer(b"".join(a_wkb), dtype=np.uint8)
        head_bytes = np.frombuffer(json.dumps(head, default=str).encode("utf-8"),
                                   dtype=np.uint8)
        with open(path, "wb") as fh:
            writer = np.savez_compressed if compress else np.savez
            writer(fh, head=head_bytes, ground_m=self.ground_m, top_m=self.top_m,
                   clear_top_m=self.clear_top_m, floor_k=self.floor_k,
                   bld_top_m=self.bld_top_m, bld_base_m=self.bld_base_m,
                   bld_ground_m=self.bld_ground_m, wkb=blob, wkb_off=off,
                   area_wkb=a_blob, area_wkb_off=a_off)
        return path

    @classmethod
    def load(cls, path) -> Twin:
        """Read a twin written by :meth:`save`.

        Raises
        ------
        MalformedInputError
            When the file is not a SkyTwin twin.
        """
        from skytwin.airspace.errors import MalformedInputError

        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
            head = json.loads(bytes(arrays["head"]).decode("utf-8"))
        except (OSError, ValueError, KeyError) as exc:
            raise MalformedInputError(str(path), None,
                                      f"not a SkyTwin twin file: {exc}") from exc
        if head.get("format") != _FORMAT:
            raise MalformedInputError(str(path), None,
                                      f"unknown twin format {head.get('format')!r}")
        off = arrays["wkb_off"]
        blob = arrays["wkb"].tobytes()
        geoms = shapely.from_wkb([blob[off[n]:off[n + 1]] for n in range(len(off) - 1)])
        sources = head.get("height_sources")
        tags = head.get("tags")
        buildings = [
            Building(id=head["ids"][n], footprint=geoms[n],
                     base_m=float(arrays["bld_base_m"][n]),
                     top_m=float(arrays["bld_top_m"][n]),
                     ground_m=float(arrays["bld_ground_m"][n]), kind=head["kinds"][n],
                     parent_id=head["parent_ids"][n],
                     height_source=sources[n] if sources else "coordinates",
                     tags=tags[n] if tags else None)
            for n in range(len(off) - 1)
        ]
        areas = []
        if head.get("areas"):
            a_off = arrays["area_wkb_off"]
            a_blob = arrays["area_wkb"].tobytes()
            a_geoms = shapely.from_wkb([a_blob[a_off[n]:a_off[n + 1]]
                                        for n in range(len(a_off) - 1)])
            areas = [Building(id=a["id"], footprint=g, base_m=float(a["base_m"]),
                              top_m=float(a["top_m"]), ground_m=float(a["ground_m"]),
                              kind=a["kind"], parent_id=a["parent_id"],
                              height_source=a["height_source"], tags=a["tags"])
                     for a, g in zip(head["areas"], a_geoms, strict=True)]
        twin = cls(frame=Frame(*head["frame"]), grid=GridSpec.from_dict(head["grid"]),
                   clearance_m=head["clearance_m"], resolution_m=head["resolution_m"],
                   layer_m=head["layer_m"], ceiling_agl_m=head["ceiling_agl_m"],
                   ground_m=arrays["ground_m"], top_m=arrays["top_m"],
                   clear_top_m=arrays["clear_top_m"], floor_k=arrays["floor_k"],
                   buildings=buildings, meta=head["meta"])
        twin.areas = areas
        return twin

    def __repr__(self):
        g = self.grid
        return (f"Twin({len(self.buildings)} buildings, grid {g.nx}x{g.ny}x{g.nz} at "
                f"{g.dx_m} m x {g.dz_m} m, clearance {self.clearance_m} m)")


def _reason_counts(skipped: list[dict]) -> dict[str, int]:
    out: dict[str, int] = {}
    for s in skipped:
        out[s["reason"]] = out.get(s["reason"], 0) + 1
    return out


def _check(name, value, lo=0.0, strict=True):
    v = float(value)
    if not math.isfinite(v) or (v <= lo if strict else v < lo):
        raise ValueError(f"{name} must be {'>' if strict else '>='} {lo} and finite, "
                         f"got {value!r}")
    return v


def _plan_grid(bbox, ground_lo, ground_hi, top_hi, *, resolution_m, layer_m,
               clearance_m, ceiling_agl_m, margin_m) -> GridSpec:
    """Grid covering ``bbox`` plus margin; refuses absurd sizes before allocating."""
    minx, miny, maxx, maxy = bbox
    d = resolution_m
    width = maxx - minx + 2 * margin_m
    height = maxy - miny + 2 * margin_m
    if max(width, height) > MAX_EXTENT_M:
        raise TwinTooLargeError(
            f"the buildings span {width / 1000:.1f} km x {height / 1000:.1f} km, more than "
            f"the {MAX_EXTENT_M / 1000:.0f} km a twin may cover: check the CRS, or split "
            "the model into several twins")
    x0 = math.floor((minx - margin_m) / d) * d
    y0 = math.floor((miny - margin_m) / d) * d
    nx = max(1, math.ceil((maxx + margin_m - x0) / d))
    ny = max(1, math.ceil((maxy + margin_m - y0) / d))
    z0 = float(math.floor(ground_lo))
    z_hi = max(top_hi + clearance_m, ground_hi + ceiling_agl_m)
    nz = max(1, math.ceil((z_hi - z0) / layer_m)) + 1
    if nx * ny > MAX_COLUMNS:
        raise TwinTooLargeError(
            f"grid of {nx} x {ny} = {nx * ny:,} columns at {d} m exceeds the limit of "
            f"{MAX_COLUMNS:,}: use a coarser resolution_m")
    if nx * ny * nz > MAX_VOXELS:
        raise TwinTooLargeError(
            f"grid of {nx} x {ny} x {nz} = {nx * ny * nz:,} voxels exceeds the limit of "
            f"{MAX_VOXELS:,}: use a coarser resolution_m or layer_m")
    if nz > np.iinfo(np.int16).max:
        raise TwinTooLargeError(f"{nz} layers exceed the int16 layer index range")
    return GridSpec(x0_m=float(x0), y0_m=float(y0), z0_m=z0, dx_m=float(d),
                    dz_m=float(layer_m), nx=int(nx), ny=int(ny), nz=int(nz))


def _terrain_field(grid: GridSpec, xyz: np.ndarray) -> np.ndarray:
    """Ground at the cell centres from terrain samples: linear, nearest outside hull."""
    from scipy.interpolate import LinearNDInterpolator, NearestNDInterpolator
    from scipy.spatial import QhullError

    xc = grid.x0_m + (np.arange(grid.nx) + 0.5) * grid.dx_m
    yc = grid.y0_m + (np.arange(grid.ny) + 0.5) * grid.dx_m
    out = np.empty((grid.nx, grid.ny), dtype=np.float32)
    nearest = NearestNDInterpolator(xyz[:, :2], xyz[:, 2])
    linear = None
    if len(xyz) >= 3:
        try:
            linear = LinearNDInterpolator(xyz[:, :2], xyz[:, 2])
        except QhullError:  # collinear or degenerate samples: nearest only
            linear = None
    rows = max(1, 2_000_000 // grid.ny)
    for i0 in range(0, grid.nx, rows):
        gx, gy = np.meshgrid(xc[i0:i0 + rows], yc, indexing="ij")
        z = linear(gx, gy) if linear is not None else np.full(gx.shape, np.nan)
        miss = ~np.isfinite(z)
        if np.any(miss):
            z[miss] = nearest(gx[miss], gy[miss])
        out[i0:i0 + rows] = z
    return out


FILL_CELLS = 1_000_000
"""Largest grid on which the ground is spread cell by cell; larger grids spread it on a
coarser grid of at most this many cells (the ground between buildings is an estimate
anyway, and the exact transform of 25 M cells costs seconds and 400 MB)."""


def _fill_nearest(field: np.ndarray) -> np.ndarray:
    """Replace non-finite cells by the value of the nearest finite cell (in place).

    Exact nearest (Euclidean feature transform) up to ``FILL_CELLS`` cells; beyond, on a
    grid coarsened by ``f = ceil(sqrt(cells / FILL_CELLS))`` whose cells hold the mean of
    their known fine cells. Known cells are never changed.
    """
    from scipy.ndimage import distance_transform_edt

    known = np.isfinite(field)
    if known.all():
        return field
    vals = field[known]
    if vals.size == 0:
        field[:] = 0.0
        return field
    if np.all(vals == vals[0]):
        field[~known] = vals[0]
        return field
    nx, ny = field.shape
    f = max(1, math.ceil(math.sqrt(nx * ny / FILL_CELLS)))
    if f == 1:
        idx = distance_transform_edt(~known, return_distances=False,
                                     return_indices=True)
        field[~known] = field[idx[0][~known], idx[1][~known]]
        return field
    coarse = np.empty((-(-nx // f), -(-ny // f)), dtype=np.float64)
    _coarse_mean_kernel(field, f, coarse)
    ck = np.isfinite(coarse)
    idx = distance_transform_edt(~ck, return_distances=False, return_indices=True)
    _fill_from_coarse_kernel(field, f, coarse[idx[0], idx[1]].astype(np.float32))
    return field


def _raise_unknown(buildings, grounds, terrain_xyz_m, ceiling_agl_m):
    """Obstacles of unknown height (``height_source == "unknown"``) reach the ceiling.

    Their top becomes the highest ground of the twin (buildings' and terrain's) plus
    ``ceiling_agl_m``, so their columns are blocked through every flyable layer: what
    the data does not measure is never overflown.
    """
    unknown = [n for n, b in enumerate(buildings) if b.height_source == "unknown"]
    if not unknown:
        return buildings
    hi = float(np.nanmax(grounds)) if grounds.size else 0.0
    if terrain_xyz_m is not None:
        tz = np.asarray(terrain_xyz_m, dtype=np.float64)
        if tz.ndim == 2 and tz.shape[1] == 3 and tz.size and np.all(np.isfinite(tz)):
            hi = max(hi, float(tz[:, 2].max()))
    ceiling = hi + float(ceiling_agl_m)
    out = list(buildings)
    for n in unknown:
        b = out[n]
        if b.top_m < ceiling:
            out[n] = dataclasses.replace(b, top_m=ceiling)
    return out


def build_twin(result_or_buildings, *, resolution_m: float = 2.0, layer_m: float = 2.0,
               clearance_m: float = 5.0, frame: Frame | None = None,
               terrain_xyz_m=None, ceiling_agl_m: float = 120.0,
               margin_m: float | None = None, progress=None) -> Twin:
    """Build the airspace twin of a city model.

    Parameters
    ----------
    result_or_buildings : LoadResult or list of Building
        A reader's result (its frame, buildings, terrain and skipped objects are used)
        or buildings in the local frame of ``frame``.
    resolution_m : float
        Horizontal cell size [m] (default 2).
    layer_m : float
        Layer thickness [m] (default 2).
    clearance_m : float
        Horizontal and vertical clearance around buildings [m] (default 5).
    frame : Frame, optional
        Required with a list of buildings; overrides the LoadResult's frame otherwise.
    terrain_xyz_m : (n, 3) array, optional
        Terrain samples (local x, y [m]; z [m AMSL]); default: the LoadResult's.
    ceiling_agl_m : float
        The layers reach at least this far above the highest ground [m] (default 120).
    margin_m : float, optional
        Free border around the buildings [m]; default ``clearance_m + 3 * resolution_m``.
    progress : callable(done, total), optional
        Called while rasterizing, per chunk of buildings.

    Returns
    -------
    Twin

    Raises
    ------
    ValueError
        Bad parameters, no frame for a list of buildings, no buildings at all.
    TypeError
        Neither a LoadResult nor a list of Building; ``frame`` not a Frame.
    TwinTooLargeError
        The grid would be absurdly large (see module docstring).

    Examples
    --------
    >>> from shapely.geometry import box
    >>> b = Building("a", box(0, 0, 10, 10), base_m=0.0, top_m=20.0, ground_m=0.0)
    >>> t = build_twin([b], frame=Frame(4.3, 52.08), resolution_m=2.0, clearance_m=5.0)
    >>> t.grid.nx, t.grid.nz, int(t.floor_k.max())   # 20 + 5 = 25 m -> layers 0..12
    (17, 61, 13)
    """
    t_start = time.perf_counter()
    resolution_m = _check("resolution_m", resolution_m)
    layer_m = _check("layer_m", layer_m)
    clearance_m = _check("clearance_m", clearance_m, strict=False)
    ceiling_agl_m = _check("ceiling_agl_m", ceiling_agl_m, strict=False)
    meta: dict = {"source": [], "fmt": None, "counts": {}, "skipped": [],
                  "has_terrain": False}
    if isinstance(result_or_buildings, LoadResult):
        res = result_or_buildings
        buildings = list(res.buildings)
        frame = frame if frame is not None else res.frame
        if terrain_xyz_m is None:
            terrain_xyz_m = res.terrain_xyz_m
        areas = list(getattr(res, "areas", []))
        meta.update(source=[str(res.path)], fmt=res.fmt, counts=dict(res.counts),
                    skipped=[{"object_id": s.object_id, "reason": s.reason}
                             for s in res.skipped],
                    has_terrain=bool(res.has_terrain), audit=list(res.audit))
    else:
        areas = []
        buildings = list(result_or_buildings)
        if frame is None:
            raise ValueError("build_twin needs frame= when given a list of buildings")
        if not all(isinstance(b, Building) for b in buildings):
            raise TypeError("build_twin expects a LoadResult or a list of Building")
    if not isinstance(frame, Frame):
        raise TypeError(f"frame must be an airspace.frame.Frame, got {type(frame)!r}")
    if not buildings:
        raise ValueError("no buildings to build a twin from")
    if margin_m is None:
        margin_m = clearance_m + 3 * resolution_m
    margin_m = _check("margin_m", margin_m, strict=False)

    grounds = np.array([b.ground_m for b in buildings], dtype=np.float64)
    buildings = _raise_unknown(buildings, grounds, terrain_xyz_m, ceiling_agl_m)
    flat = flatten_footprints([b.footprint for b in buildings])
    tops = np.array([b.top_m for b in buildings], dtype=np.float64)
    if not (np.all(np.isfinite(tops)) and np.all(np.isfinite(grounds))):
        bad = int(np.flatnonzero(~(np.isfinite(tops) & np.isfinite(grounds)))[0])
        raise ValueError(f"building {buildings[bad].id!r} has a non-finite height")
    bbox = (float(flat.bbox_m[:, 0].min()), float(flat.bbox_m[:, 1].min()),
            float(flat.bbox_m[:, 2].max()), float(flat.bbox_m[:, 3].max()))
    g_lo, g_hi = float(grounds.min()), float(grounds.max())
    if terrain_xyz_m is not None:
        terrain_xyz_m = np.asarray(terrain_xyz_m, dtype=np.float64)
        if terrain_xyz_m.ndim != 2 or terrain_xyz_m.shape[1] != 3 or \
                len(terrain_xyz_m) == 0 or not np.all(np.isfinite(terrain_xyz_m)):
            raise ValueError("terrain_xyz_m must be a non-empty finite (n, 3) array")
        meta["has_terrain"] = True
    grid = _plan_grid(bbox, g_lo, g_hi, float(tops.max()), resolution_m=resolution_m,
                      layer_m=layer_m, clearance_m=clearance_m,
                      ceiling_agl_m=ceiling_agl_m, margin_m=margin_m)

    top, clear_top, gbld = rasterize_footprints(
        flat, tops, grounds, x0_m=grid.x0_m, y0_m=grid.y0_m, dx_m=grid.dx_m, nx=grid.nx,
        ny=grid.ny, clearance_m=clearance_m, progress=progress)
    if terrain_xyz_m is not None:
        del gbld
        ground = _terrain_field(grid, terrain_xyz_m)
    else:
        ground = _fill_nearest(gbld)
    # re-plan the layers if the terrain reaches outside the buildings' ground range
    g_lo2, g_hi2 = float(ground.min()), float(ground.max())
    if g_lo2 < grid.z0_m or g_hi2 > g_hi:
        grid = _plan_grid(bbox, min(g_lo, g_lo2), max(g_hi, g_hi2), float(tops.max()),
                          resolution_m=resolution_m, layer_m=layer_m,
                          clearance_m=clearance_m, ceiling_agl_m=ceiling_agl_m,
                          margin_m=margin_m)
    np.maximum(top, ground, out=top)          # -inf (no building) -> ground
    np.maximum(clear_top, ground, out=clear_top)
    floor_k = floor_layers(clear_top, z0_m=grid.z0_m, dz_m=grid.dz_m, nz=grid.nz)
    meta["build_s"] = time.perf_counter() - t_start
    meta["peak_mem_mb"] = _peak_mem_mb()
    twin = Twin(frame=frame, grid=grid, clearance_m=clearance_m,
                resolution_m=resolution_m, layer_m=layer_m, ceiling_agl_m=ceiling_agl_m,
                ground_m=ground, top_m=top, clear_top_m=clear_top, floor_k=floor_k,
                buildings=buildings, meta=meta)
    twin.areas = areas  # the reader's non-obstacle areas (for derived zones; saved)
    return twin
