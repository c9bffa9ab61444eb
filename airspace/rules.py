"""Default airspace rules, kept as data (``fixtures/rules/default_rules.json``).

Design
------
Limits that regulators set (the 120 m ceiling, clearances, airport exclusions) change by
country and over time, so they live in a JSON file that a person can read, cite and
edit, not in code. :func:`load_rules` validates that file into a frozen :class:`Rules`;
every error names the file and the field (``airports.zones[1].radius_m: must be > 0``).

The default ceiling is 120 m above ground: the EU open-category limit (Reg. (EU)
2019/947, Annex Part A, UAS.OPEN.010(2)) and China's controlled-airspace threshold
(airspace above 120 m true height is controlled airspace: Interim Regulations on the
Flight Management of Unmanned Aircraft, Decree No. 761, Art. 19, in force 2024-01-01).
The ceiling is a limit for the planner, not a zone. Airport exclusions are circles that
:meth:`Rules.airport_zones` turns into ordinary :class:`~airspace.zones.Zone` records
for a :class:`~airspace.zones.ZoneLayer`; they are off unless ``airports.enabled`` is
true.

File layout (``schema: "skytwin-rules/1"``)::

    {"ceiling": {"value_m", "reference", "sources": [...]},
     "floor": null | {"value_m", "reference"},
     "clearance_m": 5.0,
     "airports": {"enabled": false, "zones": [{"id", "name", "lon_deg", "lat_deg",
                  "radius_m", "lower": {...}, "upper": {...}}]}}

Examples
--------
>>> r = load_rules()
>>> r.ceiling, r.clearance_m, r.airports_enabled
(Altitude(value_m=120.0, reference='AGL'), 5.0, False)
>>> r.airport_zones()
[]
>>> [z.id for z in r.airport_zones(include_disabled=True)][:1]
['AIRPORT-EFHK']
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from skytwin.airspace.errors import MalformedInputError, ZoneError
from skytwin.airspace.zones import REFERENCES, Altitude, Circle, Zone

__all__ = [
    "DEFAULT_RULES_PATH",
    "SCHEMA",
    "AirportExclusion",
    "Rules",
    "RulesError",
    "load_rules",
    "parse_rules",
]

SCHEMA = "skytwin-rules/1"
DEFAULT_RULES_PATH = (
    Path(__file__).resolve().parents[1] / "fixtures" / "rules" / "default_rules.json"
)


class RulesError(MalformedInputError):
    """A rules file is malformed; ``object_id`` is the offending field's path."""


@dataclass(frozen=True, slots=True)
class AirportExclusion:
    """A circular no-fly exclusion around an aerodrome reference point."""

    id: str
    name: str
    lon_deg: float
    lat_deg: float
    radius_m: float
    lower: Altitude
    upper: Altitude

    def to_zone(self) -> Zone:
        """This exclusion as a permanent :class:`~airspace.zones.Zone`."""
        return Zone(
            id=self.id,
            circle=Circle(self.lon_deg, self.lat_deg, self.radius_m),
            lower=self.lower,
            upper=self.upper,
            reason="AIR_TRAFFIC",
            authority="SkyTwin default rules",
            name=self.name,
        )


@dataclass(frozen=True, slots=True)
class Rules:
    """Validated airspace rules (see module docstring)."""

    ceiling: Altitude
    floor: Altitude | None
    clearance_m: float
    airports_enabled: bool
    airports: tuple[AirportExclusion, ...]
    sources: tuple[str, ...] = ()

    def ceiling_amsl_m(self, ground_m: float) -> float:
        """The ceiling [m AMSL] above ground at ``ground_m`` [m AMSL]."""
        return self.ceiling.amsl_m(ground_m)

    def airport_zones(self, include_disabled: bool = False) -> list[Zone]:
        """Airport exclusions as Zones ([] while disabled, unless asked for)."""
        if not (self.airports_enabled or include_disabled):
            return []
        return [a.to_zone() for a in self.airports]


# ----------------------------------------------------------------------------- parsing
class _Ctx:
    def __init__(self, path):
        self.path = path

    def fail(self, field, reason):
        return RulesError(self.path, field, reason)

    def num(self, d, key, field, positive=False, allow_zero=True):
        v = d.get(key) if isinstance(d, dict) else None
        if (
            isinstance(v, bool)
            or not isinstance(v, int | float)
            or not math.isfinite(v)
        ):
            raise self.fail(f"{field}", f"must be a finite number, got {v!r}")
        if positive and not (v > 0 or (allow_zero and v == 0)):
            raise self.fail(
                field, f"must be {'>= 0' if allow_zero else '> 0'}, got {v!r}"
            )
        return float(v)

    def obj(self, v, field):
        if not isinstance(v, dict):
            raise self.fail(field, f"must be an object, got {type(v).__name__}")
        return v

    def altitude(self, v, field):
        v = self.obj(v, field)
        ref = v.get("reference")
        if ref not in REFERENCES:
            raise self.fail(
                f"{field}.reference", f"must be one of {REFERENCES}, got {ref!r}"
            )
        return Altitude(self.num(v, "value_m", f"{field}.value_m"), ref)


def parse_rules(doc: dict, path: str | None = None) -> Rules:
    """Validate a parsed rules document (see :func:`load_rules`)."""
    c = _Ctx(path)
    doc = c.obj(doc, "<root>")
    if doc.get("schema") != SCHEMA:
        raise c.fail("schema", f"must be {SCHEMA!r}, got {doc.get('schema')!r}")
    ceiling_d = c.obj(doc.get("ceiling"), "ceiling")
    ceiling = c.altitude(ceiling_d, "ceiling")
    sources = ceiling_d.get("sources", [])
    if not isinstance(sources, list) or not all(isinstance(s, str) for s in sources):
        raise c.fail("ceiling.sources", "must be a list of strings")
    floor = None if doc.get("floor") is None else c.altitude(doc["floor"], "floor")
    if (
        floor is not None
        and floor.reference == ceiling.reference
        and not floor.value_m < ceiling.value_m
    ):
        raise c.fail(
            "floor.value_m",
            f"must be below ceiling.value_m ({floor.value_m:g} >= {ceiling.value_m:g})",
        )
    clearance = c.num(doc, "clearance_m", "clearance_m", positive=True)
    ap = c.obj(doc.get("airports", {"enabled": False, "zones": []}), "airports")
    enabled = ap.get("enabled", False)
    if not isinstance(enabled, bool):
        raise c.fail("airports.enabled", f"must be true or false, got {enabled!r}")
    zones = ap.get("zones", [])
    if not isinstance(zones, list):
        raise c.fail("airports.zones", f"must be a list, got {type(zones).__name__}")
    airports, seen = [], set()
    for n, a in enumerate(zones):
        f = f"airports.zones[{n}]"
        a = c.obj(a, f)
        aid = a.get("id")
        if not isinstance(aid, str) or not aid.strip():
            raise c.fail(f"{f}.id", f"must be a non-empty string, got {aid!r}")
        if aid in seen:
            raise c.fail(f"{f}.id", f"duplicate id {aid!r}")
        seen.add(aid)
        lon = c.num(a, "lon_deg", f"{f}.lon_deg")
        lat = c.num(a, "lat_deg", f"{f}.lat_deg")
        if not -180 <= lon <= 180:
            raise c.fail(f"{f}.lon_deg", f"must be in [-180, 180], got {lon}")
        if not -90 <= lat <= 90:
            raise c.fail(f"{f}.lat_deg", f"must be in [-90, 90], got {lat}")
        excl = AirportExclusion(
            id=aid,
            name=str(a.get("name", aid)),
            lon_deg=lon,
            lat_deg=lat,
            radius_m=c.num(
                a, "radius_m", f"{f}.radius_m", positive=True, allow_zero=False
            ),
            lower=c.altitude(a.get("lower"), f"{f}.lower"),
            upper=c.altitude(a.get("upper"), f"{f}.upper"),
        )
        try:
            excl.to_zone()
        except ZoneError as exc:
            raise c.fail(f, str(exc)) from exc
        airports.append(excl)
    return Rules(
        ceiling=ceiling,
        floor=floor,
        clearance_m=clearance,
        airports_enabled=enabled,
        airports=tuple(airports),
        sources=tuple(sources),
    )


def load_rules(path: str | Path | None = None) -> Rules:
    """Read and validate a rules file (default: ``fixtures/rules/default_rules.json``).

    Raises
    ------
    RulesError
        Naming the file and the field, e.g. ``rules.json [clearance_m]: must be >= 0``.
    """
    p = Path(path) if path is not None else DEFAULT_RULES_PATH
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise RulesError(str(p), None, "rules file not found") from exc
    except json.JSONDecodeError as exc:
        raise RulesError(str(p), None, f"not valid JSON: {exc}") from exc
    return parse_rules(doc, str(p))
