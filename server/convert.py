"""Message <-> domain converters: the only place where protobuf meets the domain.

Design
------
``airspace/`` and ``planner/`` never import protobuf; the servicers never build domain
objects by hand. Every conversion is one named function here (``zone_from_proto``,
``zone_to_proto``, ``route_request_from_proto``, ``route_to_proto``, ...), so that a
field's unit or reference is translated in exactly one place.

Conventions: proto ``Timestamp``/``Duration`` <-> float seconds (Unix seconds for
times); an unset message field means "default" (documented in the .proto); the
``AltitudeReference`` enum <-> the domain strings ``"AGL"``/``"AMSL"``, with
``ALTITUDE_REFERENCE_UNSPECIFIED`` refused (a height without a reference is ambiguous).
Bad values raise the domain's own typed errors (``ZoneError``, ``ValueError``) so that
:mod:`server.errors` maps them to INVALID_ARGUMENT with a message naming the field.

Limits. The ``*_from_proto`` functions take the server's
:class:`~server.limits.Limits` and check every caller-controlled field against it
*before* building a domain object (whose own messages may repeat the input): ids and
texts by length and characters, coordinates, speeds, the departure horizon, delays,
radii, altitudes, vertex counts. Messages name the field and the limit and repeat at
most ``echo_chars`` characters of the input.
"""

from __future__ import annotations

import math
from pathlib import Path

from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from skytwin.airspace.errors import ZoneError
from skytwin.server.limits import LimitError, check_id, check_range, check_text, load_limits
from skytwin.v1 import airspace_pb2 as apb
from skytwin.v1 import changes_pb2 as cpb
from skytwin.v1 import flights_pb2 as fpb
from skytwin.v1 import zones_pb2 as zpb

__all__ = [
    "box_from_proto",
    "change_to_proto",
    "duration",
    "flight_to_proto",
    "gridcode_to_proto",
    "reference_from_proto",
    "reference_to_proto",
    "route_request_from_proto",
    "route_to_proto",
    "seconds",
    "timestamp",
    "zone_from_proto",
    "zone_to_proto",
]

_REF_TO = {"AGL": apb.ALTITUDE_REFERENCE_AGL, "AMSL": apb.ALTITUDE_REFERENCE_AMSL}
_REF_FROM = {v: k for k, v in _REF_TO.items()}
_STATUS_TO = {"accepted": fpb.FLIGHT_STATUS_ACCEPTED, "cancelled": fpb.FLIGHT_STATUS_CANCELLED}
_STATUS_FROM = {v: k for k, v in _STATUS_TO.items()}
_CHANGE_TO = {
    "zone_added": cpb.CHANGE_KIND_ZONE_ADDED,
    "zone_updated": cpb.CHANGE_KIND_ZONE_UPDATED,
    "zone_removed": cpb.CHANGE_KIND_ZONE_REMOVED,
    "flight_accepted": cpb.CHANGE_KIND_FLIGHT_ACCEPTED,
    "flight_cancelled": cpb.CHANGE_KIND_FLIGHT_CANCELLED,
    "flight_state": cpb.CHANGE_KIND_FLIGHT_STATE_CHANGED,
}


# ------------------------------------------------------------------------- time
def timestamp(t_s: float) -> Timestamp:
    """Unix seconds -> Timestamp (nanosecond rounding)."""
    ts = Timestamp()
    ns = round(float(t_s) * 1e9)
    ts.seconds, ts.nanos = divmod(ns, 1_000_000_000)
    return ts


def seconds(ts: Timestamp) -> float:
    """Timestamp -> Unix seconds."""
    return ts.seconds + ts.nanos * 1e-9


def duration(d_s: float) -> Duration:
    d = Duration()
    ns = round(float(d_s) * 1e9)
    d.seconds, d.nanos = int(ns / 1e9), ns - int(ns / 1e9) * 1_000_000_000
    return d


def duration_s(d: Duration) -> float:
    return d.seconds + d.nanos * 1e-9


def opt_time(msg, name: str) -> float | None:
    """``seconds(msg.name)`` when the Timestamp field is set, else ``None``."""
    return seconds(getattr(msg, name)) if msg.HasField(name) else None


# ------------------------------------------------------------------------- geometry
def reference_from_proto(ref: int, where: str) -> str:
    try:
        return _REF_FROM[ref]
    except KeyError:
        raise ValueError(f"{where}.reference must be ALTITUDE_REFERENCE_AGL or "
                         f"ALTITUDE_REFERENCE_AMSL, got {apb.AltitudeReference.Name(ref) if ref in apb.AltitudeReference.values() else ref}") from None


def reference_to_proto(ref: str) -> int:
    return _REF_TO[ref]


def box_from_proto(b, where: str = "box", required: bool = True):
    """LonLatBox -> ``(min_lon, min_lat, max_lon, max_lat)``; ``None`` when unset and
    not required."""
    vals = (b.min_lon_deg, b.min_lat_deg, b.max_lon_deg, b.max_lat_deg)
    if not any(vals):
        if required:
            raise ValueError(f"{where} is required (min/max lon/lat in degrees)")
        return None
    if not all(math.isfinite(v) for v in vals):
        raise ValueError(f"{where}: coordinates must be finite")
    if not (-180 <= vals[0] <= 180 and -180 <= vals[2] <= 180 and -90 <= vals[1] <= 90
            and -90 <= vals[3] <= 90):
        raise ValueError(f"{where}: longitudes must be within -180..180 and latitudes "
                         "within -90..90 degrees")
    if not (vals[0] <= vals[2] and vals[1] <= vals[3]):
        raise ValueError(f"{where}: min must not exceed max, got lon [{vals[0]}, {vals[2]}], "
                         f"lat [{vals[1]}, {vals[3]}]")
    return vals


def _lonlat(p) -> tuple[float, float]:
    return (float(p.lon_deg), float(p.lat_deg))


def _checked_lonlat(p, where: str) -> tuple[float, float]:
    return (check_range(f"{where}.lon_deg", p.lon_deg, -180.0, 180.0, "deg"),
            check_range(f"{where}.lat_deg", p.lat_deg, -90.0, 90.0, "deg"))


# ------------------------------------------------------------------------- zones
def zone_from_proto(z: zpb.Zone, limits=None):
    """``skytwin.v1.Zone`` -> :class:`airspace.zones.Zone` (limits checked first, then
    validated by the domain; the band against the ground by the service core)."""
    from skytwin.airspace.zones import Altitude, Authority, Circle, Zone
    from skytwin.server.service import RequestTooLargeError
    lim = limits or load_limits()
    zid = check_id(lim, "zone.id", z.id)
    for name in ("name", "reason", "authority_name", "authority_contact"):
        check_text(lim, f"zone.{name}", getattr(z, name))
    if not z.HasField("lower") or not z.HasField("upper"):
        raise ZoneError(f"zone {zid!r}: lower and upper altitudes are required")
    for name in ("lower", "upper"):
        check_range(f"zone.{name}.value_m", getattr(z, name).value_m,
                    -lim.max_abs_altitude_m, lim.max_abs_altitude_m, "m")
    lower = Altitude(z.lower.value_m, reference_from_proto(z.lower.reference, "lower"))
    upper = Altitude(z.upper.value_m, reference_from_proto(z.upper.reference, "upper"))
    shape = z.WhichOneof("shape")
    polygon = circle = None
    if shape == "polygon":
        n = len(z.polygon.vertices)
        if n > lim.max_polygon_vertices:
            raise RequestTooLargeError(
                f"zone {zid}: polygon has {n} vertices, more than the limit of "
                f"{lim.max_polygon_vertices}; simplify it")
        polygon = [_lonlat(v) for v in z.polygon.vertices]
    elif shape == "circle":
        check_range("zone.circle.radius_m", z.circle.radius_m, 0.0, lim.max_radius_m, "m")
        if not z.circle.radius_m > 0:
            raise LimitError(f"zone.circle.radius_m must be > 0, got {z.circle.radius_m:g}")
        circle = Circle(z.circle.centre.lon_deg, z.circle.centre.lat_deg, z.circle.radius_m)
    else:
        raise ZoneError(f"zone {zid!r}: a polygon or a circle is required")
    t0 = opt_time(z, "active_from")
    t1 = opt_time(z, "active_until")
    window = None if t0 is None and t1 is None else (t0, t1)
    return Zone(id=zid, lower=lower, upper=upper, polygon=polygon, circle=circle,
                window=window, reason=z.reason,
                authority=Authority(z.authority_name, z.authority_contact),
                name=z.name or None)


def zone_to_proto(z) -> zpb.Zone:
    out = zpb.Zone(id=z.id, name=z.name or "", reason=z.reason or "",
                   authority_name=z.authority.name, authority_contact=z.authority.contact,
                   lower=apb.Altitude(value_m=z.lower.value_m,
                                      reference=reference_to_proto(z.lower.reference)),
                   upper=apb.Altitude(value_m=z.upper.value_m,
                                      reference=reference_to_proto(z.upper.reference)))
    if z.polygon is not None:
        out.polygon.vertices.extend(apb.LonLat(lon_deg=lo, lat_deg=la) for lo, la in z.polygon)
    else:
        out.circle.centre.lon_deg = z.circle.lon_deg
        out.circle.centre.lat_deg = z.circle.lat_deg
        out.circle.radius_m = z.circle.radius_m
    if z.window is not None:
        if z.window[0] is not None:
            out.active_from.CopyFrom(timestamp(z.window[0]))
        if z.window[1] is not None:
            out.active_until.CopyFrom(timestamp(z.window[1]))
    d = getattr(z, "derived", None)     # a derived zone (server.ground, issue 13)
    if d is not None:
        out.derived.CopyFrom(zpb.DerivedInfo(
            category=d.category, rule=d.rule, source_id=d.source_id, matched=d.matched,
            members=list(d.members), buffer_m=d.buffer_m, sources=list(d.sources),
            also_matched=list(d.also_matched), enabled=d.enabled,
            rule_category=d.rule_category, overridden=d.overridden,
            override_by=d.override_by, override_reason=d.override_reason))
        if d.override_time_s is not None:
            out.derived.override_time.CopyFrom(timestamp(d.override_time_s))
    return out


# ------------------------------------------------------------------------- routes
def route_request_from_proto(r: fpb.RouteRequest, now_s: float, ceiling_agl_m: float,
                             limits=None, where: str = "route"):
    """RouteRequest message -> ``(planner.route.RouteRequest, meta)``.

    ``meta`` holds what booking needs besides the route: ``priority``, ``max_delay_s``,
    ``speeds`` (plain dict, stored with the flight). Every field is checked against
    ``limits`` (default: the bundled limits) first.
    """
    from skytwin.planner.route import RouteRequest
    from skytwin.planner.timing import SpeedProfile
    lim = limits or load_limits()
    if not r.HasField("start") or not r.HasField("goal"):
        raise ValueError(f"{where}.start and {where}.goal are required")
    start = _checked_lonlat(r.start, f"{where}.start")
    goal = _checked_lonlat(r.goal, f"{where}.goal")
    d = SpeedProfile()
    speeds = SpeedProfile(cruise_mps=r.cruise_speed_mps or d.cruise_mps,
                          climb_mps=r.climb_speed_mps or d.climb_mps,
                          descent_mps=r.descent_speed_mps or d.descent_mps)
    check_range(f"{where}.cruise_speed_mps", speeds.cruise_mps, lim.min_cruise_speed_mps,
                lim.max_cruise_speed_mps, "m/s")
    for name in ("climb_mps", "descent_mps"):
        check_range(f"{where}.{name.replace('_mps', '_speed_mps')}", getattr(speeds, name),
                    lim.min_vertical_speed_mps, lim.max_vertical_speed_mps, "m/s")
    max_delay_s = duration_s(r.max_delay) if r.HasField("max_delay") else 600.0
    check_range(f"{where}.max_delay", max_delay_s, 0.0, lim.max_delay_s, "s")
    priority = r.priority or 1.0
    check_range(f"{where}.priority", priority, 0.0, lim.max_priority)
    if not priority > 0:
        raise ValueError(f"{where}.priority must be > 0, got {priority:g}")
    check_range(f"{where}.ceiling_agl_m", r.ceiling_agl_m, 0.0, 10_000.0, "m")
    check_range(f"{where}.min_agl_m", r.min_agl_m, 0.0, 10_000.0, "m")
    for name in ("start_alt_amsl_m", "goal_alt_amsl_m"):
        if r.HasField(name):
            check_range(f"{where}.{name}", getattr(r, name), -lim.max_abs_altitude_m,
                        lim.max_abs_altitude_m, "m")
    check_range(f"{where}.risk_weight", r.risk_weight, 0.0, 1000.0)
    check_range(f"{where}.max_band", r.max_band, 0, 6)
    depart_s = opt_time(r, "departure_time") or now_s
    if depart_s > now_s + lim.max_departure_ahead_s:
        raise LimitError(f"{where}.departure_time is {(depart_s - now_s) / 86400:.0f} days "
                         f"ahead; the limit is {lim.max_departure_ahead_s / 86400:g} days "
                         "ahead")
    req = RouteRequest(
        start_lonlat=start, goal_lonlat=goal,
        depart_s=depart_s,
        ceiling_agl_m=r.ceiling_agl_m or ceiling_agl_m,
        min_agl_m=r.min_agl_m or 10.0, speeds=speeds,
        start_alt_amsl_m=r.start_alt_amsl_m if r.HasField("start_alt_amsl_m") else None,
        goal_alt_amsl_m=r.goal_alt_amsl_m if r.HasField("goal_alt_amsl_m") else None,
        risk_weight=float(r.risk_weight), max_band=int(r.max_band) or None)
    meta = {"priority": float(priority), "max_delay_s": float(max_delay_s),
            "speeds": {"cruise_mps": speeds.cruise_mps, "climb_mps": speeds.climb_mps,
                       "descent_mps": speeds.descent_mps}}
    return req, meta


def _waypoints(lonlat, amsl, agl, t_s):
    return [fpb.Waypoint(position=apb.LonLat(lon_deg=float(lo), lat_deg=float(la)),
                         alt_amsl_m=float(a), alt_agl_m=float(g), time=timestamp(t))
            for (lo, la), a, g, t in zip(lonlat, amsl, agl, t_s, strict=True)]


def route_to_proto(route) -> fpb.Route:
    """:class:`planner.route.Route` -> Route message."""
    tr = route.trajectory
    return fpb.Route(
        waypoints=_waypoints(route.lonlat_deg, route.alt_amsl_m, route.alt_agl_m, tr.t_s),
        length_m=route.length_m, duration=duration(route.duration_s),
        clearance_m=route.clearance_m, straight_m=route.straight_m,
        search_level=route.level, zones_considered=list(route.zones_considered),
        exposure=exposure_to_proto(route.exposure))


def exposure_to_proto(ex: dict | None) -> fpb.RouteExposure | None:
    """A route's exposure report (:mod:`server.ground`) -> RouteExposure."""
    if not ex:
        return None
    return fpb.RouteExposure(
        people_overflown=ex.get("people_overflown", 0.0),
        people_overflown_unit=ex.get("unit", ""), worst_band=ex.get("worst_band", 0),
        worst_band_name=ex.get("worst_band_name", ""), igrc=ex.get("igrc") or 0,
        max_density_ppl_km2=ex.get("max_density_ppl_km2", 0.0),
        period=ex.get("period", ""), population_source=ex.get("population_source", ""),
        length_by_band_m=ex.get("length_by_band_m", {}),
        derived_zones_near=[fpb.DerivedZoneNear(
            zone_id=n["id"], category=n["category"], rule=n["rule"],
            source_id=n["source_id"], distance_m=n["distance_m"])
            for n in ex.get("derived_zones_near", [])],
        warnings=list(ex.get("warnings", [])), risk_weight=ex.get("risk_weight", 0.0),
        max_band=ex.get("max_band") or 0)


def flight_to_proto(rec) -> fpb.Flight:
    """Store ``FlightRecord`` -> Flight message (route as it will be flown).

    Built once per record (records are frozen; a booking's response and every Watch
    stream that sends it share the message): callers copy it into theirs and must not
    modify it."""
    out = rec.__dict__.get("_proto")
    if out is None:
        out = _flight_to_proto(rec)
        object.__setattr__(rec, "_proto", out)
    return out


def _flight_to_proto(rec) -> fpb.Flight:
    tr = rec.trajectory
    meta = rec.meta or {}
    out = fpb.Flight(
        flight_id=rec.flight_id, operator_id=rec.operator_id, request_id=rec.request_id,
        status=_STATUS_TO.get(rec.status, fpb.FLIGHT_STATUS_UNSPECIFIED),
        route=fpb.Route(waypoints=_waypoints(rec.lonlat_deg, rec.alt_amsl_m, rec.alt_agl_m,
                                             tr.t_s),
                        length_m=tr.length_m, duration=duration(tr.duration_s)),
        delay=duration(meta.get("delay_s", 0.0)),
        layer_shift=int(meta.get("layer_shift", 0)),
        created_time=timestamp(rec.created_s), priority=float(rec.priority),
        cancel_reason=rec.cancel_reason or "")
    if rec.cancelled_s is not None:
        out.cancelled_time.CopyFrom(timestamp(rec.cancelled_s))
    return out


def status_from_proto(s: int) -> str | None:
    return _STATUS_FROM.get(s)


# ------------------------------------------------------------------------- grid codes
def gridcode_to_proto(code) -> apb.GridCodeInfo:
    lon, lat, _ = code.centre()
    z0, z1 = code.z_range_m
    return apb.GridCodeInfo(
        code=str(code), h3_cell=int(code.cell), layer=int(code.layer),
        layer_m=float(code.layer_m), reference=reference_to_proto(code.reference),
        resolution=int(code.res), centre=apb.LonLat(lon_deg=lon, lat_deg=lat),
        z_lo_m=z0, z_hi_m=z1,
        boundary=[apb.LonLat(lon_deg=lo, lat_deg=la) for lo, la in code.boundary_lonlat()])


def blocked_to_proto(result: dict) -> apb.QueryBlockedCodesResponse:
    kinds = {"building": apb.Blocker.KIND_BUILDING, "zone": apb.Blocker.KIND_ZONE}
    return apb.QueryBlockedCodesResponse(codes=[
        apb.BlockedCode(code=str(c), blockers=[
            apb.Blocker(kind=kinds.get(b.kind, apb.Blocker.KIND_UNSPECIFIED), id=b.id)
            for b in blk])
        for c, blk in result.items()])


def info_to_proto(d: dict) -> apb.GetTwinInfoResponse:
    b = d["bounds_wgs84"]
    g = d["grid"]
    return apb.GetTwinInfoResponse(
        bounds=apb.LonLatBox(min_lon_deg=b[0], min_lat_deg=b[1], max_lon_deg=b[2],
                             max_lat_deg=b[3]),
        resolution_m=d["resolution_m"], layer_m=d["layer_m"], clearance_m=d["clearance_m"],
        ceiling_agl_m=d["ceiling_agl_m"], layer_count=g["nz"], column_count_x=g["nx"],
        column_count_y=g["ny"], floor_amsl_m=d["z0_m"], building_count=d["buildings"],
        skipped_count=d["skipped"], blocked_fraction=d["blocked_fraction"],
        source=d["source"], zone_count=d["zone_count"],
        accepted_flight_count=d["accepted_flight_count"],
        limits=apb.Limits(**d["limits"]) if "limits" in d else None,
        audit=[_audit_to_proto(a) for a in d.get("audit", [])])


def _audit_to_proto(a: dict) -> apb.SourceAudit:
    """One file's build audit (``airspace.io``'s dict) as a message; the file name only."""
    return apb.SourceAudit(
        file=Path(str(a.get("path", ""))).name, format=a.get("format", ""),
        crs=a.get("crs", ""), objects_seen=a.get("objects_seen", {}),
        obstacles=a.get("obstacles", 0), repaired=a.get("repaired", 0),
        hulled=a.get("hulled", 0), heights=a.get("heights", {}),
        height_fields=a.get("height_fields", {}),
        unknown_heights=a.get("unknown_heights", 0),
        unknown_height_policy=a.get("unknown_height_policy", ""),
        repairs=a.get("repairs", {}), skipped=a.get("skipped", 0),
        skipped_reasons=a.get("skipped_reasons", {}), notes=a.get("notes", []))


# ------------------------------------------------------------------------- changes
def change_to_proto(ch) -> cpb.Change:
    out = cpb.Change(sequence=ch.sequence, kind=_CHANGE_TO[ch.kind],
                     time=timestamp(ch.time_s), actor=ch.actor,
                     affected_flight_ids=list(ch.affected_flight_ids),
                     reason=ch.reason or "", flight_state=ch.flight_state or "")
    if ch.zone is not None:
        out.zone.CopyFrom(zone_to_proto(ch.zone))
    elif ch.flight is not None:
        out.flight.CopyFrom(flight_to_proto(ch.flight))
    return out
