"""The web map's level of detail never hides an obstacle (coarser, never thinner)."""

from __future__ import annotations

import numpy as np
import pytest
import shapely

from skytwin.server.web import views


@pytest.fixture(scope="module")
def city():
    from skytwin.airspace.twin import build_twin
    from skytwin.fixtures.synthetic_city import generate_city, synthetic_frame
    frame = synthetic_frame()
    return build_twin(generate_city(size_m=2000.0, n_buildings=6000, seed=3, frame=frame),
                      frame=frame)


def _boxes(twin, p):
    out = []
    for r, n in zip(p["rings"], p["ring_building"], strict=True):
        ll = np.asarray(r).reshape(-1, 2)
        x, y = twin.frame.to_local(ll[:, 0], ll[:, 1])
        out.append((shapely.Polygon(np.column_stack([x, y])), p["base_m"][n], p["top_m"][n]))
    return out


def test_blocks_enclose_every_building(city):
    assert views.buildings_payload(city)["lod"] == "coarse"   # auto, > 5,000 buildings
    p = views.buildings_payload(city, "blocks")
    assert p["lod"] == "blocks" and p["buildings_total"] == len(city.buildings)
    assert p["count"] <= views.MAX_BLOCKS and sum(p["members"]) == len(city.buildings)
    boxes = _boxes(city, p)
    tree = shapely.STRtree([b[0] for b in boxes])
    for b in city.buildings:
        hits = tree.query(b.footprint, predicate="covered_by")
        # some block covers the footprint (5 cm for the 1e-7 deg rounding), roof included
        if not len(hits):
            hits = tree.query(b.footprint.buffer(-0.05), predicate="covered_by")
        assert any(boxes[h][2] >= b.top_m - 0.01 and boxes[h][1] <= b.base_m + 0.01
                   for h in hits), b.id


def _covered(city, p, skip):
    """Every building not in ``skip`` (ids) lies in one of ``p``'s blocks, roof
    included."""
    boxes = [(shapely.Polygon(np.column_stack(city.frame.to_local(
        np.asarray(r)[0::2], np.asarray(r)[1::2]))), p["base_m"][n], p["top_m"][n])
        for r, n in zip(p["rings"], p["ring_building"], strict=True)
        if not str(p["ids"][n]) in skip]
    tree = shapely.STRtree([b[0] for b in boxes])
    for b in city.buildings:
        if str(b.id) in skip:
            continue
        hits = tree.query(b.footprint.buffer(-0.05), predicate="covered_by")
        assert any(boxes[h][2] >= b.top_m - 0.01 and boxes[h][1] <= b.base_m + 0.01
                   for h in hits), b.id


def test_district_holds_every_building_it_meets(city):
    w, s, e, n = city.bounds_wgs84()
    box = [w, s, w + (e - w) / 3, s + (n - s) / 3]
    p = views.buildings_in_box(city, box)
    x, y = city.frame.to_local([box[0], box[2], box[2], box[0]],
                               [box[1], box[1], box[3], box[3]])
    want = {str(city.buildings[i].id) for i in city.index.query(
        shapely.Polygon(np.column_stack([x, y])), predicate="intersects")}
    exact = p["ids"][:p["exact"]]
    assert p["lod"] == "district" and set(exact) == want and len(want) > 100
    # the rest of the city is there too, as coarse blocks enclosing it
    assert sum(p["members"]) == len(city.buildings)
    assert p["count"] - p["exact"] <= views.MAX_COARSE_BLOCKS
    _covered(city, p, set(exact))
    # a district with more buildings than the cap: the nearest exact, the rest blocks
    q = views.buildings_in_box(city, box, max_count=50)
    assert q["exact"] == 50 and set(q["ids"][:50]) < want
    assert sum(q["members"]) == len(city.buildings)
    _covered(city, q, set(q["ids"][:50]))
    with pytest.raises(ValueError, match="west < east"):
        views.buildings_in_box(city, [e, s, w, n])


def test_coarse_blocks_enclose_every_building(city):
    p = views.buildings_payload(city, "coarse")
    assert p["lod"] == "coarse" and p["count"] <= views.MAX_COARSE_BLOCKS
    assert sum(p["members"]) == len(city.buildings)
    _covered(city, p, set())
