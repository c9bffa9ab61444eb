"""EUROCAE ED-269 UAS geographical zones (JSON) to and from Zone records.

Design
------
ED-269 is the format in which EU states publish UAS geographical zones (Reg. 2019/947,
art. 15). A file holds ``{"title", "description", "features": [...]}`` where each
feature is a ``UASZoneVersion``::

    identifier, country, name, type (COMMON | CUSTOMIZED),
    restriction (PROHIBITED | REQ_AUTHORISATION | CONDITIONAL | NO_RESTRICTION),
    restrictionConditions, region, reason [AIR_TRAFFIC | SENSITIVE | PRIVACY |
    POPULATION | NATURE | NOISE | FOREIGN_TERRITORY | EMERGENCY | OTHER],
    otherReasonInfo, regulationExemption, uSpaceClass, message,
    zoneAuthority [{name, service, contactName, siteURL, email, phone, purpose, ...}],
    applicability [{permanent: YES | NO, startDateTime, endDateTime, schedule}],
    geometry [{uomDimensions: M | FT, lowerLimit, lowerVerticalReference,
               upperLimit, upperVerticalReference (AGL | AMSL | WGS84),
               horizontalProjection: {type: Polygon, coordinates: [[[lon, lat], ...]]}
                                   | {type: Circle, center: [lon, lat], radius}}]

(field names as used by EUROCONTROL's UAS zone service and open-source implementations
such as Flight Blender / argon-server). A top-level list of features, or a single
feature, is accepted too.

Import rules (each documented choice errs on the side of blocking more airspace):

* Units: ``FT`` limits and circle radii are multiplied by exactly 0.3048. The radius is
  in the volume's ``uomDimensions``.
* References: AGL and AMSL map to :class:`~airspace.zones.Altitude`; ``WGS84``
  (ellipsoidal height) is converted to AMSL only when the caller gives the geoid height
  ``geoid_height_m`` (N, with AMSL = h - N); otherwise it is rejected. A missing
  ``lowerLimit`` means the surface (0 m AGL); a missing ``upperLimit`` means unlimited
  (:data:`UNLIMITED_M` m AMSL).
* Polygons: the first ring is the outline; holes (allowed areas) are dropped, which only
  enlarges the zone.
* Applicability: ``permanent: YES`` (or no applicability at all) means always active;
  each other entry gives a window ``[startDateTime, endDateTime]`` (UTC, time zone
  required). A recurring ``schedule`` inside an entry is not modelled: the whole
  start-end span is blocked (conservative).
* Ids: one Zone per (volume, window). With one volume and one window the Zone id is the
  feature ``identifier``; otherwise ``"<identifier>/v<i>"`` for volume ``i`` and/or
  ``"/w<j>"`` for window ``j`` (both 0-based), e.g. ``"EFH01/v1/w0"``.
* ``restriction``: every restriction except ``NO_RESTRICTION`` becomes a no-fly Zone
  (authorisation-required zones are blocked unless the operator holds an authorisation,
  which SkyTwin does not model); ``NO_RESTRICTION`` features are skipped with a logged
  warning, or imported too with ``skip_unrestricted=False``.
* ``reason``: a Zone keeps one string: the reason codes joined by ``","`` or, for
  ``OTHER``, the ``otherReasonInfo`` text; the authority keeps the first
  ``zoneAuthority`` entry's name and its first contact among email, siteURL, phone,
  contactName.

Export writes one feature per Zone with metres and ``PROHIBITED``, so that
``parse_ed269(dump_ed269(zones)) == zones``. Malformed input raises
:class:`~airspace.errors.ZoneError` naming the JSON path, e.g.
``features[3].geometry[0].horizontalProjection.radius: must be > 0``.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from skytwin.airspace.errors import ZoneError
from skytwin.airspace.zones import Altitude, Authority, Circle, Zone

__all__ = [
    "FT_TO_M",
    "REASONS",
    "RESTRICTIONS",
    "UNLIMITED_M",
    "MAX_JSON_DEPTH",
    "dump_ed269",
    "json_depth",
    "load_ed269",
    "loads_ed269",
    "parse_ed269",
    "save_ed269",
]

log = logging.getLogger(__name__)

FT_TO_M = 0.3048  # exact, by definition of the international foot
UNLIMITED_M = 100_000.0  # [m AMSL] stands for a missing upperLimit
RESTRICTIONS = ("PROHIBITED", "REQ_AUTHORISATION", "CONDITIONAL", "NO_RESTRICTION")
REASONS = (
    "AIR_TRAFFIC",
    "SENSITIVE",
    "PRIVACY",
    "POPULATION",
    "NATURE",
    "NOISE",
    "FOREIGN_TERRITORY",
    "EMERGENCY",
    "OTHER",
)
_REFS = ("AGL", "AMSL", "WGS84")
MAX_JSON_DEPTH = 32  # real ED-269 files nest about 8 deep


def _err(where, msg):
    return ZoneError(f"{where}: {msg}")


def _num(v, where):
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise _err(where, f"must be a number, got {v!r}")
    v = float(v)
    if not math.isfinite(v):
        raise _err(where, f"must be finite, got {v!r}")
    return v


def _str(v, where, required=False):
    if v is None and not required:
        return None
    if not isinstance(v, str) or (required and not v.strip()):
        raise _err(
            where, f"must be a {'non-empty ' if required else ''}string, got {v!r}"
        )
    return v


def _list(v, where, required=False):
    if v is None and not required:
        return []
    if not isinstance(v, list):
        raise _err(where, f"must be a list, got {type(v).__name__}")
    return v


def _dict(v, where):
    if not isinstance(v, dict):
        raise _err(where, f"must be an object, got {type(v).__name__}")
    return v


def _time(v, where):
    if not isinstance(v, str):
        raise _err(where, f"must be an ISO 8601 date-time string, got {v!r}")
    try:
        dt = datetime.fromisoformat(v)
    except ValueError:
        raise _err(where, f"not an ISO 8601 date-time: {v!r}") from None
    if dt.tzinfo is None:
        raise _err(where, f"needs a time zone (e.g. a trailing 'Z' for UTC): {v!r}")
    return dt.timestamp()


def _format_time(t_s: float) -> str:
    return datetime.fromtimestamp(t_s, UTC).isoformat().replace("+00:00", "Z")


# ------------------------------------------------------------------------------ import
def _limit(vol, key, scale, where, geoid_height_m, default):
    value = vol.get(f"{key}Limit")
    ref_key = f"{key}VerticalReference"
    if value is None:
        return default
    v = _num(value, f"{where}.{key}Limit") * scale
    ref = vol.get(ref_key)
    if ref not in _REFS:
        raise _err(f"{where}.{ref_key}", f"must be one of {_REFS}, got {ref!r}")
    if ref == "WGS84":
        if geoid_height_m is None:
            raise _err(
                f"{where}.{ref_key}",
                "WGS84 (ellipsoidal) heights need "
                "geoid_height_m to be converted to AMSL",
            )
        return Altitude(v - float(geoid_height_m), "AMSL")
    return Altitude(v, ref)


def _projection(hp, scale, where):
    hp = _dict(hp, where)
    kind = hp.get("type")
    if kind == "Circle":
        c = _list(hp.get("center"), f"{where}.center", required=True)
        if len(c) != 2:
            raise _err(f"{where}.center", f"must be [lon, lat], got {c!r}")
        lon = _num(c[0], f"{where}.center[0]")
        lat = _num(c[1], f"{where}.center[1]")
        if not (-180 <= lon <= 180 and -90 <= lat <= 90):
            raise _err(f"{where}.center", f"[lon, lat] out of range: {c!r}")
        r = _num(hp.get("radius"), f"{where}.radius") * scale
        if not r > 0:
            raise _err(f"{where}.radius", f"must be > 0, got {hp.get('radius')!r}")
        return {"circle": Circle(lon, lat, r)}
    if kind == "Polygon":
        rings = _list(hp.get("coordinates"), f"{where}.coordinates", required=True)
        if not rings:
            raise _err(f"{where}.coordinates", "must hold at least one ring")
        ring = _list(rings[0], f"{where}.coordinates[0]", required=True)
        pts = []
        for n, p in enumerate(ring):
            w = f"{where}.coordinates[0][{n}]"
            if not isinstance(p, list) or len(p) not in (2, 3):
                raise _err(w, f"must be [lon, lat], got {p!r}")
            pts.append((_num(p[0], f"{w}[0]"), _num(p[1], f"{w}[1]")))
        return {"polygon": pts}
    raise _err(f"{where}.type", f"must be 'Polygon' or 'Circle', got {kind!r}")


def _windows(feat, where):
    apps = _list(feat.get("applicability"), f"{where}.applicability")
    wins = []
    for n, a in enumerate(apps):
        w = f"{where}.applicability[{n}]"
        a = _dict(a, w)
        perm = a.get("permanent")
        if perm not in (None, "YES", "NO"):
            raise _err(f"{w}.permanent", f"must be 'YES' or 'NO', got {perm!r}")
        if perm == "YES":
            return [None]
        start = a.get("startDateTime")
        end = a.get("endDateTime")
        s = None if start is None else _time(start, f"{w}.startDateTime")
        e = None if end is None else _time(end, f"{w}.endDateTime")
        if s is not None and e is not None and not e > s:
            raise _err(
                f"{w}.endDateTime", f"must be after startDateTime ({end} <= {start})"
            )
        _list(a.get("schedule"), f"{w}.schedule")  # validated, blocked as a whole span
        wins.append(None if s is None and e is None else (s, e))
    return wins or [None]


def _reason(feat, where):
    codes = _list(feat.get("reason"), f"{where}.reason")
    for n, c in enumerate(codes):
        if c not in REASONS:
            raise _err(f"{where}.reason[{n}]", f"must be one of {REASONS}, got {c!r}")
    info = _str(feat.get("otherReasonInfo"), f"{where}.otherReasonInfo") or ""
    named = [c for c in codes if c != "OTHER"]
    if info:
        return ", ".join([*named, info]) if named else info
    return ",".join(codes)


def _authority(feat, where):
    auths = _list(feat.get("zoneAuthority"), f"{where}.zoneAuthority")
    if not auths:
        return Authority("")
    a = _dict(auths[0], f"{where}.zoneAuthority[0]")
    name = _str(a.get("name"), f"{where}.zoneAuthority[0].name") or ""
    contact = ""
    for key in ("email", "siteURL", "phone", "contactName"):
        v = _str(a.get(key), f"{where}.zoneAuthority[0].{key}")
        if v:
            contact = v
            break
    return Authority(name, contact)


def _feature_zones(feat, where, geoid_height_m, skip_unrestricted):
    feat = _dict(feat, where)
    ident = _str(feat.get("identifier"), f"{where}.identifier", required=True)
    restriction = feat.get("restriction")
    if restriction is not None and restriction not in RESTRICTIONS:
        raise _err(
            f"{where}.restriction",
            f"must be one of {RESTRICTIONS}, got {restriction!r}",
        )
    name = _str(feat.get("name"), f"{where}.name")
    reason = _reason(feat, where)
    authority = _authority(feat, where)
    windows = _windows(feat, where)
    vols = _list(feat.get("geometry"), f"{where}.geometry", required=True)
    if not vols:
        raise _err(f"{where}.geometry", "must hold at least one volume")
    if restriction == "NO_RESTRICTION" and skip_unrestricted:
        log.warning(
            "%s (%s): restriction NO_RESTRICTION, not imported as a no-fly zone",
            where,
            ident,
        )
        return []
    out = []
    for i, vol in enumerate(vols):
        w = f"{where}.geometry[{i}]"
        vol = _dict(vol, w)
        uom = vol.get("uomDimensions")
        if uom not in ("M", "FT"):
            raise _err(f"{w}.uomDimensions", f"must be 'M' or 'FT', got {uom!r}")
        scale = FT_TO_M if uom == "FT" else 1.0
        lower = _limit(vol, "lower", scale, w, geoid_height_m, Altitude(0.0, "AGL"))
        upper = _limit(
            vol, "upper", scale, w, geoid_height_m, Altitude(UNLIMITED_M, "AMSL")
        )
        geom = _projection(
            vol.get("horizontalProjection"), scale, f"{w}.horizontalProjection"
        )
        for j, win in enumerate(windows):
            zid = ident
            if len(vols) > 1:
                zid += f"/v{i}"
            if len(windows) > 1:
                zid += f"/w{j}"
            try:
                out.append(
                    Zone(
                        id=zid,
                        lower=lower,
                        upper=upper,
                        window=win,
                        reason=reason,
                        authority=authority,
                        name=name,
                        **geom,
                    )
                )
            except ZoneError as exc:
                raise _err(w, str(exc)) from exc
    return out


def parse_ed269(
    doc, *, geoid_height_m: float | None = None, skip_unrestricted: bool = True
) -> list[Zone]:
    """Zones from a parsed ED-269 document (dict with ``features``, list, or a feature).

    Parameters
    ----------
    doc : dict or list
        ``json.load`` output.
    geoid_height_m : float, optional
        Geoid height N [m] used to turn ``WGS84`` (ellipsoidal) limits into AMSL.
    skip_unrestricted : bool
        Skip ``NO_RESTRICTION`` features (logged) instead of importing them as no-fly.

    Returns
    -------
    list of Zone
        In file order (feature, then volume, then window).

    Raises
    ------
    ZoneError
        Naming the JSON path of the offending field.

    Examples
    --------
    >>> doc = {"features": [{"identifier": "H1", "geometry": [{"uomDimensions": "FT",
    ...     "lowerLimit": 0, "lowerVerticalReference": "AGL", "upperLimit": 400,
    ...     "upperVerticalReference": "AGL", "horizontalProjection": {"type": "Circle",
    ...     "center": [24.94, 60.17], "radius": 1000}}]}]}
    >>> z, = parse_ed269(doc)
    >>> z.id, round(z.upper.value_m, 4), round(z.circle.radius_m, 1)
    ('H1', 121.92, 304.8)
    >>> doc["features"][0]["geometry"][0]["horizontalProjection"]["radius"] = 0
    >>> parse_ed269(doc)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    skytwin.airspace.errors.ZoneError: features[0]...radius: must be > 0, got 0
    """
    if isinstance(doc, dict) and "features" in doc:
        feats = _list(doc["features"], "features", required=True)
        prefix = "features"
    elif isinstance(doc, dict) and "identifier" in doc:
        feats, prefix = [doc], "features"
    elif isinstance(doc, list):
        feats, prefix = doc, ""
    else:
        raise ZoneError(
            "ED-269 document must be an object with 'features', a list of "
            f"zones or one zone, got {type(doc).__name__}"
        )
    zones: list[Zone] = []
    seen: dict[str, str] = {}
    for n, feat in enumerate(feats):
        where = f"{prefix}[{n}]"
        for z in _feature_zones(feat, where, geoid_height_m, skip_unrestricted):
            if z.id in seen:
                raise _err(
                    f"{where}.identifier",
                    f"zone id {z.id!r} already used by {seen[z.id]}",
                )
            seen[z.id] = where
            zones.append(z)
    return zones


def load_ed269(path: str | Path, **kwargs) -> list[Zone]:
    """Read an ED-269 JSON file (see :func:`parse_ed269`; messages name the file)."""
    path = Path(path)
    try:
        return loads_ed269(path.read_text(encoding="utf-8"), **kwargs)
    except ZoneError as exc:
        raise ZoneError(f"{path}: {exc}") from exc


_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)


def json_depth(text: str) -> int:
    """Deepest nesting of arrays and objects in JSON ``text`` (brackets inside strings
    do not count); linear time, no recursion, whatever the depth.

    Examples
    --------
    >>> json_depth('{"a": [1, {"b": "]]]"}]}'), json_depth("3"), json_depth("[" * 10**5)
    (3, 0, 100000)
    """
    bare = _STRING.sub("", text)
    b = np.frombuffer(bare.encode("utf-8", "surrogatepass"), dtype=np.uint8)
    step = (np.isin(b, (0x5B, 0x7B)).astype(np.int64)
            - np.isin(b, (0x5D, 0x7D)).astype(np.int64))
    return int(np.cumsum(step).max(initial=0))


def loads_ed269(text: str, *, max_depth: int = MAX_JSON_DEPTH, **kwargs) -> list[Zone]:
    """Zones from ED-269 JSON text: nesting deeper than ``max_depth`` is refused before
    parsing (Python's JSON parser would raise RecursionError), then
    :func:`parse_ed269`.

    Examples
    --------
    >>> loads_ed269("[" * 100 + "]" * 100)
    Traceback (most recent call last):
    ...
    skytwin.airspace.errors.ZoneError: ED-269 document nests 100 levels deep, over the limit of 32
    """
    depth = json_depth(text)
    if depth > max_depth:
        raise ZoneError(f"ED-269 document nests {depth} levels deep, over the limit of "
                        f"{max_depth}")
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ZoneError(f"not valid JSON: {exc}") from exc
    except RecursionError:  # pragma: no cover - the depth check comes first
        raise ZoneError("ED-269 document nests too deep to parse") from None
    return parse_ed269(doc, **kwargs)


# ------------------------------------------------------------------------------ export
def _reason_out(reason: str) -> dict:
    if not reason:
        return {}
    codes = reason.split(",")
    if all(c in REASONS and c != "OTHER" for c in codes):
        return {"reason": codes}
    return {"reason": ["OTHER"], "otherReasonInfo": reason}


def _authority_out(a: Authority) -> list:
    if not a.name and not a.contact:
        return []
    out = {"name": a.name}
    if a.contact:
        if "@" in a.contact:
            out["email"] = a.contact
        elif a.contact.startswith(("http://", "https://")):
            out["siteURL"] = a.contact
        else:
            out["contactName"] = a.contact
    return [out]


def _feature_out(z: Zone, country: str) -> dict:
    if z.circle is not None:
        hp = {
            "type": "Circle",
            "center": [z.circle.lon_deg, z.circle.lat_deg],
            "radius": z.circle.radius_m,
        }
    else:
        ring = [list(p) for p in z.polygon]
        hp = {"type": "Polygon", "coordinates": [[*ring, ring[0]]]}
    if z.window is None:
        app = [{"permanent": "YES"}]
    else:
        a = {"permanent": "NO"}
        if z.window[0] is not None:
            a["startDateTime"] = _format_time(z.window[0])
        if z.window[1] is not None:
            a["endDateTime"] = _format_time(z.window[1])
        app = [a]
    feat = {"identifier": z.id, "country": country}
    if z.name is not None:
        feat["name"] = z.name
    feat.update(
        {
            "type": "COMMON",
            "restriction": "PROHIBITED",
            **_reason_out(z.reason),
            "zoneAuthority": _authority_out(z.authority),
            "applicability": app,
            "geometry": [
                {
                    "uomDimensions": "M",
                    "lowerLimit": z.lower.value_m,
                    "lowerVerticalReference": z.lower.reference,
                    "upperLimit": z.upper.value_m,
                    "upperVerticalReference": z.upper.reference,
                    "horizontalProjection": hp,
                }
            ],
        }
    )
    return feat


def dump_ed269(
    zones: Iterable[Zone],
    *,
    country: str = "XXX",
    title: str = "SkyTwin no-fly zones",
    description: str = "Exported by SkyTwin",
) -> dict:
    """An ED-269 document (dict, ready for ``json.dump``) with one feature per zone.

    ``country`` is the ISO 3166-1 alpha-3 code written in every feature (``"XXX"``:
    unspecified). Limits are written in metres with their own reference; every zone is
    ``PROHIBITED``.
    """
    zones = list(zones)
    for z in zones:
        if not isinstance(z, Zone):
            raise ZoneError(f"expected Zone objects, got {type(z).__name__}")
    return {
        "title": title,
        "description": description,
        "features": [_feature_out(z, country) for z in zones],
    }


def save_ed269(zones: Iterable[Zone], path: str | Path, **kwargs) -> None:
    """Write :func:`dump_ed269` output to ``path`` as indented JSON."""
    Path(path).write_text(
        json.dumps(dump_ed269(zones, **kwargs), indent=2) + "\n", encoding="utf-8"
    )
