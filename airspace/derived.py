"""Zones derived from map semantics: what a city model says about a place, as zones.

Design
------
Regulators draw most no-fly volumes around the same kinds of places: aerodromes,
military sites, prisons, power plants, government premises, hospitals. A city model
already says which buildings those are (OSM ``amenity=prison``, PLATEAU ``bldg:usage``
``453``, ALKIS ``Gebaeudefunktion`` ``3071``...), so SkyTwin turns those statements into
zones with a rules file kept as data (``fixtures/rules/derived_zones.json``, schema
``skytwin-derived-zones/1``): each rule names the keys and values it matches, a lateral
buffer, an altitude band, a category and its sources (cited in the file). The readers
keep every object's attributes in :attr:`Building.tags
<airspace.building.Building.tags>`.

Categories, and what each means for planning
    ``restricted``
        never entered (the zone is put in the planner's zone layer);
    ``authorisation``
        avoided like a restricted zone unless the request lists an authorisation for
        it (its zone id or its rule id);
    ``altitude-limited``
        the ceiling is lowered inside it: its band starts at the rule's lower limit
        above ground, and the planner stays below (it is a zone in the layer too);
    ``warning``
        flown through; a route passing within it carries a warning.

Geometry
    One zone per (building, rule): the union of the footprints of the building and its
    parts (a 3DBAG building and its parts match once, not three times), grown by the
    buffer. A buffer is drawn with chords (4 per quarter circle), which lie inside the
    true circle; the buffer distance is divided by ``cos(pi/16)`` first so that the
    polygon contains the exact buffer (never thinner). A multi-part result becomes its
    convex hull, holes are filled (both only enlarge the zone). Polygons are written in
    WGS84 through the twin's frame and become ordinary :class:`~airspace.zones.Zone`
    records; provenance (rule, object id, matched key and value, sources) stays in
    :class:`DerivedZone` and in the ED-269 export's ``message``.

When an object matches several rules, the most severe category wins (restricted >
authorisation > altitude-limited > warning; then the larger buffer); the others are
listed in ``also_matched``.

Examples
--------
>>> rules = load_derived_rules()
>>> sorted(rules.categories)
['altitude-limited', 'authorisation', 'restricted', 'warning']
>>> rules.match({"amenity": "prison"})[0].id
'prison'
>>> [r.id for r in rules.match({"bldg:function": "31001_3071"})]
['police']
>>> rules.match({"bldg:function": "3071"})      # a bare number is not an ALKIS code
[]
>>> rules.match({"building": "yes"})
[]

Codes checked (issue 13)
    ALKIS ``Gebaeudefunktion`` (AX_Gebaeude, object type 31001): every code in the
    rules file was checked against the AdV code list as reproduced with its German
    names in public ALKIS processing code (2520 Gebaeude zur Elektrizitaetsversorgung,
    2521 Elektrizitaetswerk, 2522 Umspannwerk, 2523 Umformer, 2527 Reaktorgebaeude,
    3010 Verwaltungsgebaeude, 3011 Parlament, 3012 Rathaus, 3015 Gericht, 3016
    Botschaft/Konsulat, 3017 Kreisverwaltung, 3018 Bezirksregierung, 3019 Finanzamt,
    3051 Krankenhaus, 3071 Polizei, 3072 Feuerwehr, 3073 Kaserne, 3075
    Justizvollzugsanstalt); the bundled NRW and Lower Saxony models write them as
    ``31001_<code>`` (e.g. ``31001_2523``).
    PLATEAU ``bldg:usage`` (Building_usage.xml): 421 官公庁施設 (government offices),
    452 供給処理施設 (supply and treatment: power, gas, water, waste), 453 防衛施設
    (defence) checked against the code list names as reproduced in public PLATEAU
    tools; the bundled Ina model uses 452 (8 buildings). PLATEAU's *detailed* usage
    (``uro:detailedUsage``, BuildingDetailAttribute_detailedUsage.xml, 4-digit codes)
    and the municipal ``uro:orgUsage``/``orgUsage2`` codes are **not** matched: the
    code lists are not shipped with the models (``../../codelists/`` is referenced,
    not included) and could not be checked here, so police, fire stations, hospitals,
    power plants and substations in PLATEAU models are found only through
    ``bldg:usage`` 421/452/453 (coarser) or OSM-style tags.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import shapely
from shapely.geometry import MultiPolygon, Polygon

from skytwin.airspace.errors import MalformedInputError, ZoneError
from skytwin.airspace.zones import REFERENCES, Altitude, Authority, Zone

__all__ = [
    "CATEGORIES",
    "DEFAULT_DERIVED_RULES_PATH",
    "SCHEMA",
    "DerivedRule",
    "DerivedRules",
    "DerivedRulesError",
    "DerivedZone",
    "blocking_zones",
    "category_counts",
    "derive_zones",
    "derived_ed269",
    "load_derived_rules",
    "parse_derived_rules",
]

SCHEMA = "skytwin-derived-zones/1"
DEFAULT_DERIVED_RULES_PATH = (
    Path(__file__).resolve().parents[1] / "fixtures" / "rules" / "derived_zones.json"
)
CATEGORIES = ("restricted", "authorisation", "altitude-limited", "warning")
"""Most severe first."""
_SEVERITY = {c: n for n, c in enumerate(CATEGORIES)}
_ED269_RESTRICTION = {
    "restricted": "PROHIBITED",
    "authorisation": "REQ_AUTHORISATION",
    "altitude-limited": "CONDITIONAL",
    "warning": "NO_RESTRICTION",
}
_QUAD_SEGS = 4
_CHORD_FACTOR = 1.0 / math.cos(math.pi / (4 * _QUAD_SEGS))
"""Buffer inflation so the chorded polygon contains the exact buffer."""
_MAX_ID = 64


class DerivedRulesError(MalformedInputError):
    """A derived-zone rules file is malformed; ``object_id`` is the field's path."""


@dataclass(frozen=True, slots=True)
class DerivedRule:
    """One rule: which tags it matches and the zone it makes."""

    id: str
    label: str
    category: str
    buffer_m: float
    lower: Altitude
    upper: Altitude
    keys: tuple[str, ...]
    values: frozenset
    reason: str = ""
    sources: tuple[str, ...] = ()

    def matches(self, tags: Mapping[str, str]) -> tuple[str, str] | None:
        """The first ``(key, value)`` of ``tags`` this rule matches, or None.

        A value matches when it equals one of the rule's values (case-insensitive), or
        one ``;``-separated item does (OSM multi-values, several CityGML codes). Codes
        are compared whole: an ALKIS code is written with its object-type prefix
        (``31001_3071``), because other code lists use the same bare numbers for other
        things (the Berlin model's unprefixed ``bldg:function`` codes, e.g. ``2529``,
        are not ALKIS ``Gebaeudefunktion`` values).
        """
        for k in self.keys:
            v = tags.get(k)
            if v is None:
                continue
            for item in str(v).split(";"):
                if item.strip().lower() in self.values:
                    return k, str(v)
        return None


@dataclass(frozen=True)
class DerivedRules:
    """A validated rules file."""

    rules: tuple[DerivedRule, ...]
    categories: dict
    sources: dict
    path: str | None = None

    def match(self, tags: Mapping[str, str] | None) -> list[DerivedRule]:
        """Rules matching ``tags``, most severe first (then larger buffer)."""
        if not tags:
            return []
        hits = [r for r in self.rules if r.matches(tags) is not None]
        return sorted(hits, key=lambda r: (_SEVERITY[r.category], -r.buffer_m))


@dataclass(frozen=True)
class DerivedZone:
    """A zone derived from one object, with its provenance."""

    zone: Zone
    category: str
    rule: str
    source_id: str
    matched: str
    members: tuple[str, ...]
    buffer_m: float
    sources: tuple[str, ...]
    also_matched: tuple[str, ...] = ()
    area_m2: float = 0.0
    local_shape: object = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict:
        """JSON form (``skytwin zones derive --json``)."""
        z = self.zone
        return {
            "id": z.id,
            "name": z.name,
            "category": self.category,
            "rule": self.rule,
            "source_id": self.source_id,
            "matched": self.matched,
            "members": list(self.members),
            "also_matched": list(self.also_matched),
            "buffer_m": self.buffer_m,
            "lower": {"value_m": z.lower.value_m, "reference": z.lower.reference},
            "upper": {"value_m": z.upper.value_m, "reference": z.upper.reference},
            "reason": z.reason,
            "sources": list(self.sources),
            "area_m2": round(self.area_m2, 1),
            "polygon": [[round(lo, 9), round(la, 9)] for lo, la in z.polygon],
        }


# ----------------------------------------------------------------------------- parsing
def _fail(path, field_, msg):
    return DerivedRulesError(path, field_, msg)


def _altitude(v, where, path):
    if not isinstance(v, dict):
        raise _fail(path, where, f"must be an object, got {type(v).__name__}")
    ref = v.get("reference")
    if ref not in REFERENCES:
        raise _fail(path, f"{where}.reference", f"must be one of {REFERENCES}, got {ref!r}")
    val = v.get("value_m")
    if isinstance(val, bool) or not isinstance(val, int | float) or not math.isfinite(val):
        raise _fail(path, f"{where}.value_m", f"must be a finite number, got {val!r}")
    return Altitude(float(val), ref)


def parse_derived_rules(doc: dict, path: str | None = None) -> DerivedRules:
    """Validate a parsed rules document (see :func:`load_derived_rules`)."""
    if not isinstance(doc, dict):
        raise _fail(path, "<root>", "must be an object")
    if doc.get("schema") != SCHEMA:
        raise _fail(path, "schema", f"must be {SCHEMA!r}, got {doc.get('schema')!r}")
    sources = doc.get("sources", {})
    if not isinstance(sources, dict):
        raise _fail(path, "sources", "must be an object of id -> citation")
    defaults = doc.get("defaults", {})
    d_lower = _altitude(defaults.get("lower", {"value_m": 0.0, "reference": "AGL"}),
                        "defaults.lower", path)
    d_upper = _altitude(defaults.get("upper", {"value_m": 150.0, "reference": "AGL"}),
                        "defaults.upper", path)
    items = doc.get("rules")
    if not isinstance(items, list):
        raise _fail(path, "rules", "must be a list")
    rules, seen = [], set()
    for n, r in enumerate(items):
        f = f"rules[{n}]"
        if not isinstance(r, dict):
            raise _fail(path, f, "must be an object")
        rid = r.get("id")
        if not isinstance(rid, str) or not re.fullmatch(r"[A-Za-z0-9_.-]{1,32}", rid):
            raise _fail(path, f"{f}.id", f"must be 1-32 of [A-Za-z0-9_.-], got {rid!r}")
        if rid in seen:
            raise _fail(path, f"{f}.id", f"duplicate id {rid!r}")
        seen.add(rid)
        cat = r.get("category")
        if cat not in CATEGORIES:
            raise _fail(path, f"{f}.category", f"must be one of {CATEGORIES}, got {cat!r}")
        buf = r.get("buffer_m", 0.0)
        if isinstance(buf, bool) or not isinstance(buf, int | float) or not (
                math.isfinite(buf) and 0 <= buf <= 10_000):
            raise _fail(path, f"{f}.buffer_m", f"must be in [0, 10000], got {buf!r}")
        m = r.get("match")
        if not isinstance(m, dict):
            raise _fail(path, f"{f}.match", "must be an object with keys and values")
        keys, values = m.get("keys"), m.get("values")
        for nm, v in (("keys", keys), ("values", values)):
            if not (isinstance(v, list) and v and all(isinstance(x, str) and x for x in v)):
                raise _fail(path, f"{f}.match.{nm}", "must be a non-empty list of strings")
        srcs = r.get("sources", [])
        if not isinstance(srcs, list) or not all(isinstance(s, str) for s in srcs):
            raise _fail(path, f"{f}.sources", "must be a list of source ids")
        unknown = [s for s in srcs if s not in sources]
        if unknown:
            raise _fail(path, f"{f}.sources", f"unknown source id(s) {unknown}")
        if not srcs:
            raise _fail(path, f"{f}.sources", "every rule must cite at least one source")
        lower = _altitude(r["lower"], f"{f}.lower", path) if "lower" in r else d_lower
        upper = _altitude(r["upper"], f"{f}.upper", path) if "upper" in r else d_upper
        if lower.reference == upper.reference and not upper.value_m > lower.value_m:
            raise _fail(path, f"{f}.upper", "must be above lower")
        rules.append(DerivedRule(
            id=rid, label=str(r.get("label", rid)), category=cat, buffer_m=float(buf),
            lower=lower, upper=upper, keys=tuple(keys),
            values=frozenset(v.lower() for v in values), reason=str(r.get("reason", "")),
            sources=tuple(srcs)))
    cats = doc.get("categories", {})
    return DerivedRules(tuple(rules), dict(cats) if isinstance(cats, dict) else {},
                        dict(sources), path)


def load_derived_rules(path: str | Path | None = None) -> DerivedRules:
    """Read and validate a derived-zone rules file (default: the bundled one).

    Raises
    ------
    DerivedRulesError
        Naming the file and the field.
    """
    p = Path(path) if path is not None else DEFAULT_DERIVED_RULES_PATH
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise DerivedRulesError(str(p), None, "rules file not found") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DerivedRulesError(str(p), None, f"not valid JSON: {exc}") from exc
    return parse_derived_rules(doc, str(p))


# ---------------------------------------------------------------------------- deriving
def _zone_id(rule_id: str, source_id: str) -> str:
    base = re.sub(r"[^A-Za-z0-9_.:-]", "_", f"DZ-{rule_id}-{source_id}")
    if len(base) <= _MAX_ID:
        return base
    h = hashlib.sha1(base.encode()).hexdigest()[:10]
    return f"{base[:_MAX_ID - 11]}~{h}"


def _outline(geom) -> Polygon:
    """One simple polygon containing ``geom`` (holes filled; several parts: hull)."""
    if isinstance(geom, MultiPolygon):
        geom = geom.convex_hull if len(geom.geoms) > 1 else geom.geoms[0]
    if not isinstance(geom, Polygon):
        geom = geom.convex_hull
    return Polygon(geom.exterior.coords)


def derive_zones(buildings: Iterable, frame, rules: DerivedRules | None = None
                 ) -> list[DerivedZone]:
    """Derived zones of a city model's buildings (see module docstring).

    Parameters
    ----------
    buildings : iterable of Building
        With :attr:`~airspace.building.Building.tags` (objects without tags match
        nothing).
    frame : airspace.frame.Frame
        The buildings' local frame (zones are written in WGS84 through it).
    rules : DerivedRules, optional
        Default: :func:`load_derived_rules`.

    Returns
    -------
    list of DerivedZone
        Sorted by zone id.
    """
    rules = rules or load_derived_rules()
    families: dict[str, list] = {}
    for b in buildings:
        fam = b.parent_id or b.id
        families.setdefault(fam, []).append(b)
    out: dict[str, DerivedZone] = {}
    for fam, members in families.items():
        hits: dict[str, tuple] = {}
        for b in members:
            for r in rules.match(b.tags):
                k, v = r.matches(b.tags)
                hits.setdefault(r.id, (r, f"{k}={v}"))
        if not hits:
            continue
        ranked = sorted(hits.values(),
                        key=lambda h: (_SEVERITY[h[0].category], -h[0].buffer_m))
        rule, matched = ranked[0]
        fp = shapely.union_all([b.footprint for b in members])
        shape = _outline(shapely.buffer(fp, rule.buffer_m * _CHORD_FACTOR,
                                        quad_segs=_QUAD_SEGS) if rule.buffer_m > 0 else fp)
        shape = shapely.orient_polygons(shape)
        xy = shapely.get_coordinates(shape.exterior)[:-1]
        lon, lat = frame.to_wgs84(xy[:, 0], xy[:, 1])
        zid = _zone_id(rule.id, fam)
        name_src = next((b.tags.get("name") for b in members
                         if b.tags and b.tags.get("name")), None)
        try:
            zone = Zone(id=zid, polygon=tuple(zip(lon.tolist(), lat.tolist(), strict=True)),
                        lower=rule.lower, upper=rule.upper, reason=rule.reason,
                        authority=Authority("SkyTwin derived zones",
                                            f"rule {rule.id} of "
                                            f"{Path(rules.path).name if rules.path else 'rules'}"),
                        name=f"{rule.label}: {name_src or fam}")
        except ZoneError:
            continue  # a degenerate outline (cannot happen with a positive buffer)
        out[zid] = DerivedZone(
            zone=zone, category=rule.category, rule=rule.id, source_id=fam,
            matched=matched, members=tuple(sorted(b.id for b in members)),
            buffer_m=rule.buffer_m, sources=rule.sources,
            also_matched=tuple(h[0].id for h in ranked[1:]), area_m2=float(shape.area),
            local_shape=shape)
    return [out[k] for k in sorted(out)]


def blocking_zones(derived: Iterable[DerivedZone], authorisations: Iterable[str] = ()
                   ) -> list[Zone]:
    """The derived zones the planner must avoid: restricted, altitude-limited, and
    authorisation zones whose zone id or rule id is not in ``authorisations``."""
    auth = set(authorisations)
    out = []
    for d in derived:
        if d.category == "warning":
            continue
        if d.category == "authorisation" and (d.zone.id in auth or d.rule in auth):
            continue
        out.append(d.zone)
    return out


def category_counts(derived: Iterable[DerivedZone]) -> dict[str, int]:
    """Zones per category (every category listed, 0 included)."""
    counts = dict.fromkeys(CATEGORIES, 0)
    for d in derived:
        counts[d.category] += 1
    return counts


def derived_ed269(derived: Iterable[DerivedZone], **kwargs) -> dict:
    """ED-269 document of derived zones: the restriction follows the category
    (PROHIBITED, REQ_AUTHORISATION, CONDITIONAL, NO_RESTRICTION) and ``message`` holds
    the provenance (rule, object, matched attribute, sources)."""
    from skytwin.airspace.ed269 import dump_ed269
    derived = list(derived)
    kwargs.setdefault("title", "SkyTwin derived zones")
    kwargs.setdefault("description", "Zones derived from city-model semantics by rules")
    doc = dump_ed269([d.zone for d in derived], **kwargs)
    for feat, d in zip(doc["features"], derived, strict=True):
        feat["restriction"] = _ED269_RESTRICTION[d.category]
        feat["message"] = (f"derived by rule {d.rule} ({d.category}) from object "
                           f"{d.source_id} ({d.matched}); sources: "
                           f"{', '.join(d.sources)}")
    return doc
