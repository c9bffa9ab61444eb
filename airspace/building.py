"""The record every city-model reader yields, and the result of reading one file.

Heights
-------
All ``*_m`` heights in a :class:`Building` are **absolute** (metres above mean sea
level, in the vertical datum of the source model: NAP for Den Haag, JGD2011/T.P. for
PLATEAU). Sources that only know heights above ground (GeoJSON footprints, OSM) have no
terrain; for them ``ground_m`` is ``0.0`` and the absolute heights equal heights above
ground, which :attr:`LoadResult.has_terrain` states explicitly (``False``).
Height above ground of a roof is ``top_m - ground_m``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from shapely.geometry import MultiPolygon, Polygon

__all__ = ["Building", "LoadResult", "Skipped"]


@dataclass(frozen=True, slots=True)
class Building:
    """One building (or building part) in the twin's local metric frame.

    Attributes
    ----------
    id : str
        Source id (CityJSON key, ``gml:id``, GeoJSON feature id).
    footprint : shapely Polygon or MultiPolygon
        Outline projected to the ground, local frame ``(x_m east, y_m north)``.
        Valid, non-empty, counter-clockwise exteriors (``shapely.orient``).
    base_m : float
        Lowest point of the volume [m AMSL].
    top_m : float
        Highest point of the volume [m AMSL]; ``top_m > base_m``.
    ground_m : float
        Terrain height under the building [m AMSL] (``0.0`` when the source has no
        terrain, see module docstring).
    kind : str
        ``"Building"`` or ``"BuildingPart"`` (or the source's own type name).
    parent_id : str or None
        The building a part belongs to.
    height_source : str
        Where ``top_m`` comes from: ``"coordinates"`` (the model's 3D vertices), an
        attribute's name (``"height"``, ``"HAUTEUR"``, ``"measuredHeight"``...),
        ``"other LoDs or parts"`` (a 2D outline whose building is 3D elsewhere),
        ``"assumed"`` (the user's ``--unknown-height``) or ``"unknown"`` (no height in
        the data: the twin blocks the column up to its ceiling).
    tags : dict of str to str, or None
        What the model says about the object, as the reader found it (scalar values as
        strings): GeoJSON properties (OSM tags: ``amenity``, ``power``...), CityJSON
        ``attributes`` (a part's merged over its parent's), CityGML ``bldg:function``,
        ``bldg:usage``, ``bldg:class`` and PLATEAU ``uro:`` usage codes plus generic
        attributes. Used by :mod:`airspace.derived` (zones from map semantics) and
        :mod:`airspace.risk` (occupancy by use); never by the obstacle geometry.
        Saved in twin files (:meth:`airspace.twin.Twin.save`).
    """

    id: str
    footprint: Polygon | MultiPolygon
    base_m: float
    top_m: float
    ground_m: float
    kind: str = "Building"
    parent_id: str | None = None
    height_source: str = "coordinates"
    tags: dict | None = field(default=None, compare=False, hash=False, repr=False)

    @property
    def height_agl_m(self) -> float:
        """Roof height above the ground under the building [m]."""
        return self.top_m - self.ground_m


@dataclass(frozen=True, slots=True)
class Skipped:
    """An object that was read but not turned into a :class:`Building`, and why."""

    object_id: str
    reason: str


@dataclass
class LoadResult:
    """What one reader returns for one file.

    Attributes
    ----------
    buildings : list of Building
        In the local frame of ``frame``.
    skipped : list of Skipped
        Every object that was not used, each with its reason: nothing is dropped
        silently.
    frame : airspace.frame.Frame
        The local metric frame the footprints are expressed in.
    source_crs : str
        The source CRS as a string pyproj accepts (e.g. ``"EPSG:7415"``).
    has_terrain : bool
        Whether ``ground_m`` comes from the model (terrain or lowest vertices) rather
        than being assumed 0.
    path : str
        The file read.
    fmt : str
        ``"cityjson"``, ``"citygml"`` or ``"geojson"``.
    counts : dict of str to int
        Objects seen by type (e.g. ``{"Building": 844, "BuildingPart": 1653,
        "TINRelief": 1}``), used and not.
    """

    buildings: list[Building]
    skipped: list[Skipped]
    frame: object
    source_crs: str
    has_terrain: bool
    path: str
    fmt: str
    counts: dict[str, int] = field(default_factory=dict)
    terrain_xyz_m: np.ndarray | None = None
    """Optional ``(n, 3) float64`` terrain samples (local x, y; z [m AMSL]) from the
    model's relief (CityJSON TINRelief, CityGML dem:), for the twin's ground field."""
    areas: list = field(default_factory=list)
    """Tagged polygons that are not buildings (GeoJSON ``landuse=*``, ``amenity=*``
    areas in a file that tags its buildings): records like buildings (``kind ==
    "Area"``) for derived zones, never obstacles."""
    audit: list = field(default_factory=list)
    """One dict per source file: objects seen, obstacles, repaired, hulled, height
    sources, unknown heights and the policy applied, skipped with reasons (see
    :func:`airspace.io.common.build_result`)."""
