"""The served twin's ground layers: the ground-risk layer and the derived zones (issue 13).

Design
------
:class:`GroundLayers` is built once at server start from the served twin (a city
model or a twin file: both keep the objects' tags, :mod:`airspace.twin`): the
population density raster (:func:`airspace.risk.estimate_population`, or a population
file) and the zones :func:`airspace.derived.derive_zones` finds with the rules file.
Both are immutable; what changes at run time is a small table of a regulator's
**overrides** (disable a zone, change its category or band), persisted in the store
(``derived_overrides``, schema v4) and applied on top of the derived zones. The
zones in force are rebuilt (a few per city) after each override under a lock and
published as a new tuple, so readers never lock.

Why derived zones are not put in the service core's zone layer: an *authorisation*
zone blocks some operators and not others (an operator's token lists its
authorisations, :mod:`server.auth`), and a regulator must be able to tell a derived
zone from one it drew. So the core's :class:`~airspace.zones.ZoneLayer` keeps the
regulators' zones, and each plan gets a view of it plus the derived zones that block
*this* caller (:meth:`GroundLayers.plan`):

========================= =========================================================
category                  planning
========================= =========================================================
``restricted``            avoided (a zone in the planner's view), re-checked at
                          booking by the core's final validator
``authorisation``         avoided unless the caller's token lists the zone id or
                          the rule id (``authorisations`` in the token file);
                          re-checked at booking with the caller's authorisations
``altitude-limited``      a zone whose band starts at the lowered ceiling (e.g.
                          30 m AGL): the planner stays below it
``warning``               not avoided; a route within it gets a warning
========================= =========================================================

A disabled zone is none of these. Every route planned here is re-checked against the
zones that block its caller by :class:`planner.validate.RouteValidator` (independent
of the planner's search) before it is returned, and reports its exposure (people
overflown, worst SORA band, iGRC, derived zones within :data:`NEAR_M`, warnings).

Zones in the gRPC API are :class:`DerivedZoneRecord` (a :class:`~airspace.zones.Zone`
with a ``derived`` attribute, :class:`DerivedState`), so every path that shows a zone
(ListZones, the Watch stream, ED-269) can mark it derived with its provenance.

Other planners. Live operations' re-planner (advisories) plans with
:meth:`GroundLayers.zone_view`: every derived zone in force but warnings, since it does
not know the operator's authorisations (conservative). A plan held by PlanRoute
(``plan_id``) that was made before a derived-zone override is planned again at
booking (:meth:`GroundLayers.current`). Known gaps: live conformance monitoring
(:mod:`live`) watches the regulators' zones only; with several instances on one
PostgreSQL store, an override is in force at once on the instance that took it and on
the others when they follow the store's change feed (:func:`apply_override_event`).

Queries: :meth:`GroundLayers.risk_cells` (cells meeting a WGS84 box or under a grid
code's H3 cell, with densities, bands and iGRC) and :meth:`GroundLayers.query_zones`
(derived zones meeting a box, or a grid code's cell and altitude layer).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import shapely
from shapely.geometry import LineString, Point, Polygon

from skytwin.airspace.derived import CATEGORIES, category_counts, derive_zones, \
    load_derived_rules
from skytwin.airspace.errors import ZoneError
from skytwin.airspace.risk import (
    BAND_LIMITS,
    DEFAULT_DRONE,
    estimate_population,
    igrc,
    read_population,
)
from skytwin.airspace.zones import (
    REFERENCES,
    Altitude,
    LocalZone,
    Zone,
    ZoneNotFoundError,
    ground_range_from_grid,
)

__all__ = ["NEAR_M", "DerivedState", "DerivedZoneRecord", "GroundLayers",
           "apply_override_event", "override_derived_zone"]

log = logging.getLogger(__name__)

NEAR_M = 100.0
"""Derived zones within this horizontal distance of a route are listed in its exposure."""


@dataclass(frozen=True)
class DerivedState:
    """Provenance and state of a derived zone (the gRPC ``DerivedInfo``)."""

    category: str
    rule: str
    source_id: str
    matched: str
    members: tuple
    buffer_m: float
    sources: tuple
    also_matched: tuple
    enabled: bool = True
    rule_category: str = ""
    overridden: bool = False
    override_by: str = ""
    override_time_s: float | None = None
    override_reason: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class DerivedZoneRecord(Zone):
    """A derived zone as served: the zone in force plus its :class:`DerivedState`."""

    derived: DerivedState = field(default=None, compare=False)


@dataclass(frozen=True)
class _InForce:
    record: DerivedZoneRecord
    local: LocalZone


class _PlanZones:
    """The planner's zone view: the core's zones plus derived zones (always active);
    ``extra`` is a list, or a callable returning the list at each call."""

    def __init__(self, base, extra):
        self.base = base
        self.extra = extra if callable(extra) else list(extra)

    def local_zones(self, t0, t1):
        base = [] if self.base is None else list(self.base.local_zones(t0, t1))
        return base + (self.extra() if callable(self.extra) else self.extra)


def _check_category(category: str) -> str:
    if category not in CATEGORIES:
        raise ValueError(f"category must be one of {', '.join(CATEGORIES)}, got "
                         f"{category!r}")
    return category


_TWIN_CACHE: dict = {}
_TWIN_CACHE_LOCK = threading.Lock()


class GroundLayers:
    """Risk layer and derived zones of one served twin (module docstring).

    Parameters
    ----------
    twin : airspace.twin.Twin
        With its buildings' tags (and areas) as read from the model or the twin file.
    rules : path, optional
        Derived-zone rules file (default: ``fixtures/rules/derived_zones.json``).
    population : path, optional
        Population file (``.csv`` points or ``.asc`` grid, :mod:`airspace.risk`);
        default: estimated from the model.
    overrides : dict, optional
        ``{zone_id: (body, actor, time_s)}`` as stored (:meth:`apply_stored`).
    """

    def __init__(self, twin, rules=None, population=None, overrides=None):
        self.twin = twin
        key = (id(twin), str(rules), str(population))
        with _TWIN_CACHE_LOCK:
            hit = _TWIN_CACHE.get(key)
            if hit is None or hit[0]() is not twin:
                import weakref
                rs = load_derived_rules(rules)
                base = derive_zones([*twin.buildings, *getattr(twin, "areas", [])],
                                    twin.frame, rs)
                risk = (read_population(population, twin.frame, twin.grid)
                        if population else estimate_population(twin.buildings, twin.grid))
                hit = (weakref.ref(twin), rs, base, risk)
                _TWIN_CACHE[key] = hit
        _, self.rules, base, self.risk = hit
        self.rules_name = Path(self.rules.path).name if self.rules.path else "rules"
        self._base = {d.zone.id: d for d in base}
        self._ground_range = ground_range_from_grid(twin.grid, twin.ground_m)
        from skytwin.planner.validate import RouteValidator
        self._validator = RouteValidator([], twin.clearance_m)
        self._lock = threading.Lock()
        self._overrides: dict = {}
        self.generation = ""
        self._in_force: dict = {}
        self._all: dict = {}
        self.apply_stored(overrides or {})

    # ------------------------------------------------------------------ state
    def apply_stored(self, overrides: dict) -> None:
        """Apply stored overrides ``{zone_id: (body, actor, time_s)}`` (ids the rules no
        longer derive are kept in the store and logged)."""
        with self._lock:
            for zid, v in overrides.items():
                if zid not in self._base:
                    log.warning("override of derived zone %s: no such derived zone in "
                                "this twin (kept in the store, not applied)", zid)
                    continue
                self._overrides[zid] = v
            self._rebuild()

    def _record(self, zid: str) -> DerivedZoneRecord:
        d = self._base[zid]
        z = d.zone
        body, actor, t_s = self._overrides.get(zid, ({}, "", None))
        lower = Altitude(**body["lower"]) if "lower" in body else z.lower
        upper = Altitude(**body["upper"]) if "upper" in body else z.upper
        cat = body.get("category", d.category)
        state = DerivedState(
            category=cat, rule=d.rule, source_id=d.source_id, matched=d.matched,
            members=d.members, buffer_m=d.buffer_m, sources=d.sources,
            also_matched=d.also_matched, enabled=bool(body.get("enabled", True)),
            rule_category=d.category, overridden=zid in self._overrides,
            override_by=actor or "", override_time_s=t_s,
            override_reason=body.get("reason", ""))
        return DerivedZoneRecord(id=z.id, lower=lower, upper=upper, polygon=z.polygon,
                                 reason=z.reason, authority=z.authority, name=z.name,
                                 derived=state)

    def _rebuild(self) -> None:
        """Recompute the zones in force (call with the lock held)."""
        every, force = {}, {}
        for zid in self._base:
            rec = self._record(zid)
            every[zid] = rec
            if rec.derived.enabled:
                force[zid] = _InForce(rec, LocalZone(rec, self.twin.frame))
        self._all, self._in_force = every, force
        # the generation names the overrides in force (a digest, not a counter), so two
        # processes holding the same overrides agree on it (planning workers,
        # server.workers) and a held plan stays current across a change and its undo
        self.generation = hashlib.sha1(json.dumps(
            self._overrides, sort_keys=True, default=str).encode()).hexdigest()[:16]

    # ------------------------------------------------------------------ reading
    def __contains__(self, zone_id) -> bool:
        return zone_id in self._base

    def __len__(self) -> int:
        return len(self._in_force)

    def get(self, zone_id: str) -> DerivedZoneRecord:
        """The derived zone (in force or disabled); ZoneNotFoundError otherwise."""
        rec = self._all.get(zone_id)
        if rec is None:
            raise ZoneNotFoundError(f"no derived zone with id {zone_id!r}")
        return rec

    def zones(self, include_disabled: bool = False) -> list[DerivedZoneRecord]:
        """Derived zones sorted by id (those in force, or every one)."""
        if include_disabled:
            return [self._all[k] for k in sorted(self._all)]
        return [self._in_force[k].record for k in sorted(self._in_force)]

    def blocking(self, authorisations=()) -> list[LocalZone]:
        """Local zones the planner must avoid for a caller holding ``authorisations``
        (zone ids or rule ids)."""
        auth = set(authorisations or ())
        out = []
        for f in self._in_force.values():
            st = f.record.derived
            if st.category == "warning":
                continue
            if st.category == "authorisation" and (f.record.id in auth or st.rule in auth):
                continue
            out.append(f.local)
        return out

    def blocking_everyone(self) -> list[LocalZone]:
        """Local zones nobody may enter (restricted and altitude-limited in force):
        the core's final booking check adds them to its zones."""
        return [f.local for f in self._in_force.values()
                if f.record.derived.category in ("restricted", "altitude-limited")]

    def blocking_all(self) -> list[LocalZone]:
        """Every derived zone in force but warnings (nobody's authorisation assumed)."""
        return [f.local for f in self._in_force.values()
                if f.record.derived.category != "warning"]

    def zone_view(self, base):
        """A planner zone view of ``base`` plus, at each call, every non-warning derived
        zone in force (conservative: for planners that do not know the operator, such
        as live operations' re-plans)."""
        return _PlanZones(base, self.blocking_all)

    # ------------------------------------------------------------------ planning
    def plan(self, planner, req, authorisations=()):
        """Plan ``req`` with ``planner`` (a thread's :class:`planner.route.Planner`)
        avoiding the derived zones that block this caller, with the risk layer; the
        route carries its exposure (module docstring)."""
        from skytwin.planner.route import PlanError
        generation = self.generation          # before reading the zones in force
        blocking = self.blocking(authorisations)
        old_zones, old_risk = planner.zones, planner.risk
        planner.zones = _PlanZones(old_zones, blocking)
        planner.risk = self.risk
        try:
            route = planner.plan(req)
        finally:
            planner.zones, planner.risk = old_zones, old_risk
        # independent re-check of the final 4D route against the zones of this caller
        # whose box meets the route's box (the others cannot be entered)
        tr = route.trajectory
        near = _near_box(blocking, tr.xyz_m, 0.0)
        rep = self._validator.check(tr.xyz_m, tr.t_s, zones=near,
                                    ground_range=self._ground_range) if near else None
        bad = [] if rep is None else [p for p in rep.problems if "no-fly volume" in p]
        if bad:
            raise PlanError(f"internal check failed: the route enters a derived zone "
                            f"({bad[0]}); route refused", code="check_failed")
        route.exposure = self.exposure(route.xyz_m, route.exposure or {}, authorisations)
        route.ground_generation = generation
        return route

    def current(self, route) -> bool:
        """Whether ``route`` was planned with the derived zones in force now (a held
        plan made before an override is planned again at booking)."""
        return getattr(route, "ground_generation", None) == self.generation

    def exposure(self, xyz, base: dict, authorisations=()) -> dict:
        """``base`` (the planner's risk exposure) with the derived zones near the
        horizontal track and their warnings."""
        out = dict(base)
        warnings = [w for w in out.get("warnings", []) if "zone" not in w]
        xy = np.asarray(xyz, dtype=np.float64)[:, :2]
        track = LineString(xy) if len(np.unique(xy, axis=0)) > 1 else Point(xy[0])
        auth = set(authorisations or ())
        near = []
        x0, y0 = xy.min(axis=0) - NEAR_M
        x1, y1 = xy.max(axis=0) + NEAR_M
        for f in self._in_force.values():
            bx0, by0, bx1, by1 = f.local.bounds_m
            if bx1 < x0 or bx0 > x1 or by1 < y0 or by0 > y1:
                continue           # farther than NEAR_M
            rec, st = f.record, f.record.derived
            dist = float(f.local.distance_to_geom(track))
            if dist > NEAR_M:
                continue
            near.append({"id": rec.id, "category": st.category, "rule": st.rule,
                         "source_id": st.source_id, "distance_m": round(dist, 1)})
            if st.category == "warning" and dist <= 0.0:
                warnings.append(f"passes through warning zone {rec.id} ({st.rule}: "
                                f"{rec.name})")
            elif st.category == "authorisation" and dist <= 0.0 and (
                    rec.id in auth or st.rule in auth):
                warnings.append(f"flies under authorisation through zone {rec.id} "
                                f"({st.rule})")
            elif st.category == "altitude-limited" and dist <= 0.0:
                warnings.append(f"ceiling lowered to {rec.lower.value_m:g} m "
                                f"{rec.lower.reference} in zone {rec.id} ({st.rule})")
            elif dist > 0.0:
                warnings.append(f"passes {dist:.0f} m from {st.category} zone {rec.id} "
                                f"({st.rule})")
        out["derived_zones_near"] = sorted(near, key=lambda n: (n["distance_m"], n["id"]))
        out["warnings"] = warnings
        return out

    # ------------------------------------------------------------------ queries
    def _area_local(self, box=None, code=None):
        """``(local polygon, layer band or None)`` of a WGS84 box or a grid code."""
        fr = self.twin.frame
        if code is not None:
            ring = code.boundary_lonlat()
            x, y = fr.to_local([p[0] for p in ring], [p[1] for p in ring])
            return Polygon(np.column_stack([x, y])), (code.z_range_m, code.reference)
        if box is not None:
            lon = np.linspace(box[0], box[2], 9)
            lat = np.linspace(box[1], box[3], 9)
            ring_lon = np.concatenate([lon, np.full(9, box[2]), lon[::-1], np.full(9, box[0])])
            ring_lat = np.concatenate([np.full(9, box[1]), lat, np.full(9, box[3]), lat[::-1]])
            x, y = fr.to_local(ring_lon, ring_lat)
            x, y = np.asarray(x, float), np.asarray(y, float)
            if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
                raise ValueError("box: cannot be projected to the twin's frame")
            return shapely.box(x.min(), y.min(), x.max(), y.max()), None
        return None, None

    def query_zones(self, box=None, code=None, include_disabled=False, category=""):
        """Derived zones meeting a WGS84 box, or a grid code's cell and altitude layer
        (neither: all), optionally of one category; sorted by id."""
        if category:
            _check_category(category)
        area, band = self._area_local(box, code)
        out = []
        for rec in self.zones(include_disabled):
            if category and rec.derived.category != category:
                continue
            if area is not None:
                lz = (self._in_force[rec.id].local if rec.id in self._in_force
                      else LocalZone(rec, self.twin.frame))
                if not lz.shape.intersects(area):
                    continue
                if band is not None and not self._band_meets(rec, lz, band):
                    continue
            out.append(rec)
        return out

    def _band_meets(self, rec, lz, band) -> bool:
        (z0, z1), ref = band
        g_lo, g_hi = self._ground_range(*lz.bounds_m)
        if ref == "AGL":   # the layer over the zone's ground, conservatively
            z0, z1 = z0 + g_lo, z1 + g_hi
        lo = rec.lower.amsl_m(g_lo)
        hi = rec.upper.amsl_m(g_hi)
        return z0 < hi and z1 > lo

    def risk_cells(self, box=None, code=None, include_empty=False, max_cells=None) -> dict:
        """Cells of the risk layer meeting a WGS84 box or a grid code's H3 cell.

        Returns a dict with ``cells`` (each: ``i``, ``j``, ``corners`` lon/lat,
        ``density_day``, ``density_night`` [people/km²], ``band_day``, ``band_night``,
        ``igrc_day``, ``igrc_night``), the worst bands and densities over them, the
        layer's ``cell_m`` and ``source``. ``max_cells`` bounds the cells examined
        (RequestTooLargeError naming the count when exceeded).
        """
        rk = self.risk
        area, _ = self._area_local(box, code)
        if area is None:
            raise ValueError("give a box or a grid_code")
        nx, ny = rk.shape
        x0, y0, x1, y1 = area.bounds
        i0 = max(0, math.floor((x0 - rk.x0_m) / rk.cell_m))
        i1 = min(nx - 1, math.floor((x1 - rk.x0_m) / rk.cell_m))
        j0 = max(0, math.floor((y0 - rk.y0_m) / rk.cell_m))
        j1 = min(ny - 1, math.floor((y1 - rk.y0_m) / rk.cell_m))
        out = {"cells": [], "cell_m": rk.cell_m, "source": rk.source,
               "worst_band_day": 0, "worst_band_night": 0,
               "max_density_day": 0.0, "max_density_night": 0.0,
               "drone_class": f"up to {DEFAULT_DRONE.max_dimension_m:g} m, "
                              f"{DEFAULT_DRONE.max_speed_mps:g} m/s",
               "band_limits": list(BAND_LIMITS)}
        if i1 < i0 or j1 < j0:
            return out
        n = (i1 - i0 + 1) * (j1 - j0 + 1)
        if max_cells is not None and n > max_cells:
            from skytwin.server.service import RequestTooLargeError
            raise RequestTooLargeError(f"the area covers {n} risk cells of {rk.cell_m:g} m, more "
                                f"than the limit of {max_cells}; narrow it")
        ii, jj = np.meshgrid(np.arange(i0, i1 + 1), np.arange(j0, j1 + 1), indexing="ij")
        ii, jj = ii.ravel(), jj.ravel()
        c = rk.cell_m
        boxes = shapely.box(rk.x0_m + ii * c, rk.y0_m + jj * c, rk.x0_m + (ii + 1) * c,
                            rk.y0_m + (jj + 1) * c)
        hit = shapely.intersects(boxes, area) & ~shapely.touches(boxes, area)
        ii, jj = ii[hit], jj[hit]
        dd = rk.density_day[ii, jj].astype(np.float64)
        dn = rk.density_night[ii, jj].astype(np.float64)
        bd, bn = rk.bands("day")[ii, jj], rk.bands("night")[ii, jj]
        if len(ii):
            out.update(worst_band_day=int(bd.max()), worst_band_night=int(bn.max()),
                       max_density_day=float(dd.max()), max_density_night=float(dn.max()))
        keep = np.ones(len(ii), bool) if include_empty else (dd > 0) | (dn > 0)
        fr = self.twin.frame
        for k in np.flatnonzero(keep):
            i, j = int(ii[k]), int(jj[k])
            xs = rk.x0_m + np.array([i, i + 1, i + 1, i]) * c
            ys = rk.y0_m + np.array([j, j, j + 1, j + 1]) * c
            lon, lat = fr.to_wgs84(xs, ys)
            out["cells"].append({
                "i": i, "j": j,
                "corners": [(float(a), float(b)) for a, b in zip(lon, lat, strict=True)],
                "density_day": float(dd[k]), "density_night": float(dn[k]),
                "band_day": int(bd[k]), "band_night": int(bn[k]),
                "igrc_day": igrc(int(bd[k])), "igrc_night": igrc(int(bn[k]))})
        return out

    def summary(self) -> dict:
        """Counts for logs and the web map."""
        return {"derived_zones": len(self._all), "in_force": len(self._in_force),
                "counts": category_counts([_Cat(r.derived.category)
                                           for r in self.zones()]),
                "rules": self.rules_name, "risk": self.risk.summary()}

    # ------------------------------------------------------------------ overrides
    def overridden(self, zone_id: str, *, enabled=None, category=None, lower=None,
                   upper=None, reason: str = "", reset: bool = False) -> dict | None:
        """The override body that results from a change (``None``: reset), checked
        (a valid category, a non-empty band); raises for an unknown zone."""
        if zone_id not in self._base:
            raise ZoneNotFoundError(f"no derived zone with id {zone_id!r} (derived zone "
                                    "ids start with 'DZ-'; QueryDerivedZones lists them)")
        if reset:
            if any(v is not None for v in (enabled, category, lower, upper)):
                raise ValueError("reset drops every override: give no other change")
            return None
        if not (reason or "").strip():
            raise ValueError("reason is required: say why the derived zone is changed "
                             "(it is kept with the override)")
        if enabled is None and category is None and lower is None and upper is None:
            raise ValueError("nothing to change: give enabled, category, or lower and "
                             "upper (or reset)")
        if (lower is None) != (upper is None):
            raise ValueError("give both lower and upper, or neither")
        body = dict(self._overrides.get(zone_id, ({}, "", None))[0])
        if enabled is not None:
            body["enabled"] = bool(enabled)
        if category is not None:
            body["category"] = _check_category(category)
        if lower is not None:
            for name, a in (("lower", lower), ("upper", upper)):
                if a.reference not in REFERENCES or not math.isfinite(a.value_m):
                    raise ValueError(f"{name}: a finite value with reference AGL or AMSL")
            body["lower"] = {"value_m": float(lower.value_m), "reference": lower.reference}
            body["upper"] = {"value_m": float(upper.value_m), "reference": upper.reference}
        body["reason"] = reason.strip()
        z = self._base[zone_id].zone
        try:   # the resulting zone must be valid
            Zone(id=z.id, polygon=z.polygon,
                 lower=Altitude(**body["lower"]) if "lower" in body else z.lower,
                 upper=Altitude(**body["upper"]) if "upper" in body else z.upper)
        except ZoneError as exc:
            raise ValueError(str(exc)) from None
        return body

    def set_override(self, zone_id: str, body: dict | None, actor: str, t_s: float):
        """Put (or with ``body=None`` drop) an override; the resulting record."""
        with self._lock:
            if body is None:
                self._overrides.pop(zone_id, None)
            else:
                self._overrides[zone_id] = (body, actor, t_s)
            self._rebuild()
            return self._all[zone_id]


def _near_box(zones, xyz, margin_m):
    """The local zones whose box meets the box of ``xyz`` grown by ``margin_m``."""
    xy = np.asarray(xyz, dtype=np.float64)[:, :2]
    x0, y0 = xy.min(axis=0) - margin_m
    x1, y1 = xy.max(axis=0) + margin_m
    out = []
    for lz in zones:
        bx0, by0, bx1, by1 = lz.bounds_m
        if not (bx1 < x0 or bx0 > x1 or by1 < y0 or by0 > y1):
            out.append(lz)
    return out


@dataclass(frozen=True)
class _Cat:
    category: str


def override_derived_zone(core, caller, zone_id: str, **change):
    """A regulator's override of one derived zone, persisted, in force and published.

    Returns ``(record, affected flight ids)``. Operators get
    :class:`~server.service.WrongRoleError` (PERMISSION_DENIED). The store writes the
    override with a ``zone_put`` event (sequence numbers survive restarts); the change
    is published as ``zone_updated`` (``zone_removed`` when the zone is disabled, so a
    map drops it; ``zone_added`` when enabled again), with the accepted flights inside
    the zone as it now is. Plans held before the change are planned again when booked
    (:meth:`GroundLayers.current`).
    """
    ground = core.ground
    core._require_regulator(caller, "change derived zones")
    body = ground.overridden(zone_id, **change)
    with core._book, core._booking_lock():
        if core._shared:
            core._sync_locked()
        now = core.clock()
        if body is None:
            core.store.delete_derived_override(zone_id, caller.name, now)
        else:
            core.store.put_derived_override(zone_id, body, caller.name, now)
        if core._shared:     # applied and published from the feed, like every change
            core._sync_locked()
            rec = ground.get(zone_id)
            return rec, _affected(core, rec)
        rec, affected = _apply(core, zone_id, body, caller.name, now, seq=None)
    return rec, affected


def _affected(core, rec):
    on = rec.derived.enabled
    return core.affected_flights(rec) if on and rec.derived.category != "warning" else []


def _apply(core, zone_id, body, actor, t_s, seq):
    """Put the override in force and publish the change (booking lock held)."""
    ground = core.ground
    was = ground.get(zone_id).derived.enabled
    rec = ground.set_override(zone_id, body, actor, t_s)
    core._zone_gen += 1
    lz = LocalZone(rec, core.twin.frame)
    x0, y0, x1, y1 = lz.bounds_m
    lon, lat = core.twin.frame.to_wgs84([x0, x1, x1, x0], [y0, y0, y1, y1])
    bbox = (float(min(lon)), float(min(lat)), float(max(lon)), float(max(lat)))
    on = rec.derived.enabled
    affected = _affected(core, rec)
    kind = ("zone_removed" if was and not on else
            "zone_added" if on and not was else "zone_updated")
    core._publish(kind, actor, bbox, zone=rec, affected=affected, seq=seq)
    return rec, affected


def apply_override_event(core, zone_id: str, actor: str, seq: int) -> None:
    """A shared store's ``zone_put`` event naming a derived zone (another instance's
    override, or this one's): read the override as stored now, put it in force and
    publish it with the feed's sequence number (booking lock held, as for every event
    of the feed)."""
    stored = core.store.list_derived_overrides().get(zone_id)
    if stored is None:
        _apply(core, zone_id, None, actor, core.clock(), seq)
    else:
        body, by, t_s = stored
        _apply(core, zone_id, body, by, t_s, seq)

