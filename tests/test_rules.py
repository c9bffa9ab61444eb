"""Default rules file: contents, validation messages, airport zones."""

from __future__ import annotations

import copy
import json

import pytest

from skytwin.airspace.errors import MalformedInputError
from skytwin.airspace.frame import Frame
from skytwin.airspace.rules import DEFAULT_RULES_PATH, RulesError, load_rules, parse_rules
from skytwin.airspace.zones import Altitude, ZoneLayer

DEFAULT = json.loads(DEFAULT_RULES_PATH.read_text())


def test_default_rules():
    r = load_rules()
    assert r.ceiling == Altitude(120.0, "AGL")
    assert r.ceiling_amsl_m(12.5) == 132.5
    assert r.clearance_m == 5.0 and r.floor is None
    assert not r.airports_enabled and r.airport_zones() == []
    assert any("2019/947" in s for s in r.sources) and any(
        "120 m true height" in s for s in r.sources
    )


def test_airport_zones_when_enabled(tmp_path):
    doc = copy.deepcopy(DEFAULT)
    doc["airports"]["enabled"] = True
    p = tmp_path / "r.json"
    p.write_text(json.dumps(doc))
    zones = load_rules(p).airport_zones()
    assert [z.id for z in zones] == ["AIRPORT-EFHK", "AIRPORT-EHRD", "AIRPORT-RJTT"]
    layer = ZoneLayer(Frame(24.9633, 60.3172), zones[:1])
    assert [z.id for z in layer.at_point(24.9633, 60.3172 + 0.04, 50, "AGL")] == [
        "AIRPORT-EFHK"
    ]  # ~4.45 km north: inside 5 km
    assert layer.at_point(24.9633, 60.3172 + 0.05, 50, "AGL") == []  # ~5.6 km


BAD = [
    (lambda d: d.update(schema="v0"), "schema", "must be 'skytwin-rules/1'"),
    (
        lambda d: d["ceiling"].update(reference="MSL"),
        "ceiling.reference",
        "must be one of",
    ),
    (
        lambda d: d["ceiling"].update(value_m="120"),
        "ceiling.value_m",
        "must be a finite number",
    ),
    (lambda d: d.update(clearance_m=-1), "clearance_m", "must be >= 0"),
    (
        lambda d: d.update(floor={"value_m": 150, "reference": "AGL"}),
        "floor.value_m",
        "must be below ceiling.value_m",
    ),
    (
        lambda d: d["airports"].update(enabled="yes"),
        "airports.enabled",
        "true or false",
    ),
    (
        lambda d: d["airports"]["zones"][1].update(radius_m=0),
        "airports.zones[1].radius_m",
        "must be > 0",
    ),
    (
        lambda d: d["airports"]["zones"][0].update(lat_deg=91),
        "airports.zones[0].lat_deg",
        "must be in [-90, 90]",
    ),
    (
        lambda d: d["airports"]["zones"][2].update(id="AIRPORT-EFHK"),
        "airports.zones[2].id",
        "duplicate id",
    ),
    (
        lambda d: d["airports"]["zones"][0].update(
            upper={"value_m": -5, "reference": "AGL"}
        ),
        "airports.zones[0]",
        "upper.value_m must exceed lower.value_m",
    ),
    (
        lambda d: d["airports"]["zones"][0].pop("lower"),
        "airports.zones[0].lower",
        "must be an object",
    ),
]


@pytest.mark.parametrize(("mutate", "field", "reason"), BAD)
def test_validation_names_field(tmp_path, mutate, field, reason):
    doc = copy.deepcopy(DEFAULT)
    mutate(doc)
    p = tmp_path / "rules.json"
    p.write_text(json.dumps(doc))
    with pytest.raises(RulesError) as e:
        load_rules(p)
    assert isinstance(e.value, MalformedInputError) and isinstance(e.value, ValueError)
    assert e.value.object_id == field
    assert reason in e.value.reason
    assert str(e.value).startswith(f"{p} [{field}]: ")


def test_bad_files(tmp_path):
    with pytest.raises(RulesError, match="rules file not found"):
        load_rules(tmp_path / "missing.json")
    p = tmp_path / "t.json"
    p.write_text("{")
    with pytest.raises(RulesError, match=r"t\.json: not valid JSON"):
        load_rules(p)
    with pytest.raises(RulesError, match=r"\[<root>\]: must be an object"):
        parse_rules([])
