"""Zone records, the zone layer, exact segment checks and rasterization vs oracles."""

from __future__ import annotations

import math

import numpy as np
import pytest

from skytwin.airspace.errors import AirspaceError, ZoneError
from skytwin.airspace.frame import Frame
from skytwin.airspace.grid import GridSpec
from skytwin.airspace.zones import (
    Altitude,
    Authority,
    Circle,
    LocalZone,
    Zone,
    ZoneLayer,
    ZoneNotFoundError,
    ground_range_from_grid,
    segment_intersects,
    zone_voxels,
)
from tests.naive import zones as naive

FRAME = Frame(24.944, 60.171)
H10, H11, H12, H13 = 36000.0, 39600.0, 43200.0, 46800.0  # 10:00 ... 13:00 (day 0, UTC)


def _lonlat(x_m, y_m):
    lon, lat = FRAME.to_wgs84(x_m, y_m)
    return float(lon), float(lat)


def circle_zone(
    zid="C", x_m=0.0, y_m=0.0, r_m=50.0, lo=(0.0, "AGL"), hi=(120.0, "AGL"), window=None
):
    lon, lat = _lonlat(x_m, y_m)
    return Zone(
        id=zid,
        circle=Circle(lon, lat, r_m),
        lower=Altitude(*lo),
        upper=Altitude(*hi),
        window=window,
        reason="test",
        authority="CAA",
    )


def star_polygon_local(rng, cx, cy, r_m, n):
    # jittered even angles: every gap < pi, so the polygon is star-shaped and simple
    ang = (np.arange(n) + rng.uniform(0, 0.4, n)) * (2 * np.pi / n)
    rad = rng.uniform(0.3 * r_m, r_m, ang.size)
    return [
        (cx + r * math.cos(a), cy + r * math.sin(a))
        for a, r in zip(ang, rad, strict=True)
    ]


def poly_zone(zid, pts_local, lo=(0.0, "AGL"), hi=(120.0, "AGL"), window=None):
    pts = [_lonlat(x, y) for x, y in pts_local]
    return Zone(
        id=zid, polygon=pts, lower=Altitude(*lo), upper=Altitude(*hi), window=window
    )


def random_zone(rng, zid, extent_m=400.0):
    cx, cy = rng.uniform(-extent_m, extent_m, 2)
    lo_ref, hi_ref = rng.choice(["AGL", "AMSL"], 2)
    lo_v = float(rng.uniform(-5, 60))
    hi_v = lo_v + float(rng.uniform(5, 80))
    if rng.random() < 0.3:
        window = None
    else:
        s = float(rng.uniform(0, 86400))
        window = (
            s if rng.random() < 0.9 else None,
            s + float(rng.uniform(600, 7200)) if rng.random() < 0.9 else None,
        )
    if rng.random() < 0.4:
        return circle_zone(
            zid,
            cx,
            cy,
            float(rng.uniform(3, 80)),
            (lo_v, lo_ref),
            (hi_v, hi_ref),
            window,
        )
    pts = star_polygon_local(
        rng, cx, cy, float(rng.uniform(5, 100)), int(rng.integers(3, 40))
    )
    return poly_zone(zid, pts, (lo_v, lo_ref), (hi_v, hi_ref), window)


# --------------- validation
class TestValidation:
    def test_upper_must_exceed_lower_names_field(self):
        with pytest.raises(
            ZoneError,
            match=r"zone Z-17: upper\.value_m must exceed "
            r"lower\.value_m \(got 60 <= 80\)",
        ):
            circle_zone("Z-17", lo=(80, "AGL"), hi=(60, "AGL"))

    def test_mixed_references_are_not_compared(self):
        z = circle_zone("M", lo=(80, "AGL"), hi=(60, "AMSL"))
        assert z.lower.reference == "AGL"

    def test_bad_reference(self):
        with pytest.raises(ZoneError, match="reference must be one of"):
            Altitude(10, "WGS84")

    def test_non_finite_altitude(self):
        with pytest.raises(ZoneError, match="value_m must be finite"):
            Altitude(float("nan"), "AGL")

    def test_radius_must_be_positive(self):
        with pytest.raises(ZoneError, match=r"zone C: circle\.radius_m must be > 0"):
            circle_zone(r_m=0.0)

    def test_polygon_too_few_vertices(self):
        with pytest.raises(
            ZoneError, match="zone P: polygon needs at least 3 distinct"
        ):
            Zone(
                id="P",
                polygon=[(24.9, 60.1), (24.91, 60.1), (24.9, 60.1)],
                lower=Altitude(0, "AGL"),
                upper=Altitude(10, "AGL"),
            )

    def test_polygon_self_intersecting(self):
        bowtie = [(24.90, 60.10), (24.91, 60.11), (24.91, 60.10), (24.90, 60.11)]
        with pytest.raises(
            ZoneError, match="zone B: polygon is not simple: Self-intersection"
        ):
            Zone(
                id="B",
                polygon=bowtie,
                lower=Altitude(0, "AGL"),
                upper=Altitude(10, "AGL"),
            )

    def test_polygon_out_of_range(self):
        with pytest.raises(
            ZoneError, match=r"polygon\[1\]: latitude 95.0 out of range"
        ):
            Zone(
                id="R",
                polygon=[(24.9, 60.1), (24.9, 95.0), (25.0, 60.1)],
                lower=Altitude(0, "AGL"),
                upper=Altitude(10, "AGL"),
            )

    def test_polygon_non_finite(self):
        with pytest.raises(
            ZoneError, match=r"polygon\[0\]: coordinates must be finite"
        ):
            Zone(
                id="R",
                polygon=[(float("inf"), 60.1), (24.9, 60.2), (25.0, 60.1)],
                lower=Altitude(0, "AGL"),
                upper=Altitude(10, "AGL"),
            )

    def test_closed_ring_is_normalised(self):
        ring = [(24.90, 60.10), (24.91, 60.10), (24.91, 60.11), (24.90, 60.10)]
        z = Zone(
            id="P", polygon=ring, lower=Altitude(0, "AGL"), upper=Altitude(10, "AGL")
        )
        assert z.polygon == tuple(ring[:-1])
        assert z == Zone(
            id="P",
            polygon=ring[:-1],
            lower=Altitude(0, "AGL"),
            upper=Altitude(10, "AGL"),
        )

    def test_exactly_one_geometry(self):
        with pytest.raises(ZoneError, match="zone X: geometry: give exactly one"):
            Zone(id="X", lower=Altitude(0, "AGL"), upper=Altitude(10, "AGL"))

    def test_window_order(self):
        with pytest.raises(
            ZoneError,
            match=r"zone W: window\.end_s must exceed "
            r"window\.start_s \(got 10 <= 20\)",
        ):
            circle_zone("W", window=(20, 10))

    def test_empty_id(self):
        with pytest.raises(ZoneError, match="id must be a non-empty string"):
            circle_zone("  ")

    def test_authority_string_becomes_record(self):
        assert circle_zone().authority == Authority("CAA", "")


# --------------- time
class TestTimeWindows:
    z = circle_zone(window=(H10, H12))

    def test_blocks_flight_at_11(self):
        assert self.z.active_during(H11, H11)

    def test_free_at_13(self):
        assert not self.z.active_during(H13, H13)

    def test_blocks_flight_spanning_1130_1230(self):
        assert self.z.active_during(H11 + 1800, H12 + 1800)

    def test_blocks_flight_spanning_0930_1030_and_whole_day(self):
        assert self.z.active_during(H10 - 1800, H10 + 1800)
        assert self.z.active_during(0, 86400)

    def test_free_before(self):
        assert not self.z.active_during(H10 - 3600, H10 - 1)

    def test_open_ends(self):
        assert circle_zone(window=(H10, None)).active_during(1e12, 1e12)
        assert not circle_zone(window=(H10, None)).active_during(0, H10 - 1)
        assert circle_zone(window=(None, H12)).active_during(0, 1)
        assert circle_zone(window=None).active_during(H13, H13)

    def test_layer_active_and_point_query_use_time(self):
        layer = ZoneLayer(
            FRAME, [circle_zone("E", window=(H10, H12)), circle_zone("P")]
        )
        assert [z.id for z in layer.active(H11, H11)] == ["E", "P"]
        assert [z.id for z in layer.active(H13, H13)] == ["P"]
        lon, lat = _lonlat(0, 0)
        assert [z.id for z in layer.at_point(lon, lat, 50, "AGL", t_s=H11)] == [
            "E",
            "P",
        ]
        assert [z.id for z in layer.at_point(lon, lat, 50, "AGL", t_s=H13)] == ["P"]


# --------------- layer
class TestLayer:
    def test_add_duplicate_remove_unknown(self):
        layer = ZoneLayer(FRAME)
        layer.add(circle_zone("A"))
        with pytest.raises(ZoneError, match="zone A: id already in the layer"):
            layer.add(circle_zone("A"))
        with pytest.raises(ZoneNotFoundError, match="no zone with id 'B'") as e:
            layer.remove("B")
        assert isinstance(e.value, KeyError) and isinstance(e.value, AirspaceError)
        with pytest.raises(KeyError):
            layer.get("B")
        assert len(layer) == 1
        assert layer.remove("A").id == "A"
        assert len(layer) == 0 and layer.list() == []

    def test_replace_changes_geometry_and_index(self):
        layer = ZoneLayer(FRAME, [circle_zone("A", 0, 0, 20)])
        lon, lat = _lonlat(100, 0)
        assert layer.at_point(lon, lat, 10, "AGL") == []
        layer.replace(circle_zone("A", 100, 0, 20))
        assert [z.id for z in layer.at_point(lon, lat, 10, "AGL")] == ["A"]
        assert len(layer) == 1

    def test_at_point_references(self):
        layer = ZoneLayer(FRAME, [circle_zone("A", lo=(10, "AGL"), hi=(50, "AMSL"))])
        lon, lat = _lonlat(0, 0)
        # ground at 20 m AMSL: band is [30, 50] m AMSL
        assert layer.at_point(lon, lat, 29.9, "AMSL", ground_m=20) == []
        assert len(layer.at_point(lon, lat, 30.0, "AMSL", ground_m=20)) == 1
        assert len(layer.at_point(lon, lat, 30.0, "AGL", ground_m=20)) == 1  # 50 AMSL
        assert layer.at_point(lon, lat, 30.1, "AGL", ground_m=20) == []

    def test_local_circle_is_exact(self):
        lz = LocalZone(circle_zone("A", 120.0, -80.0, 30.0), FRAME)
        assert lz.centre_m == pytest.approx((120.0, -80.0), abs=1e-6)
        assert lz.distance_2d(120.0 + 40.0, -80.0) == pytest.approx(10.0, abs=1e-6)
        assert lz.contains_2d(120.0, -80.0 + 29.99)
        assert not lz.contains_2d(120.0, -80.0 + 30.01)

    def test_queries_match_brute_force(self):
        rng = np.random.default_rng(7)
        layer = ZoneLayer(FRAME, [random_zone(rng, f"Z{n:03d}") for n in range(300)])
        for _ in range(60):
            x0, y0 = rng.uniform(-500, 500, 2)
            w, h = rng.uniform(1, 300, 2)
            lon0, lat0 = _lonlat(x0, y0)
            lon1, lat1 = _lonlat(x0 + w, y0 + h)
            lon0, lon1 = min(lon0, lon1), max(lon0, lon1)
            lat0, lat1 = min(lat0, lat1), max(lat0, lat1)
            z_lo = None if rng.random() < 0.2 else float(rng.uniform(-10, 100))
            z_hi = (
                None
                if z_lo is None or rng.random() < 0.2
                else z_lo + float(rng.uniform(0, 40))
            )
            t0 = None if rng.random() < 0.3 else float(rng.uniform(0, 86400))
            t1 = None if t0 is None else t0 + float(rng.uniform(0, 3600))
            g = float(rng.uniform(0, 20))
            got = [
                z.id
                for z in layer.in_box(
                    lon0, lat0, lon1, lat1, z_lo, z_hi, t0, t1, ground_m=g
                )
            ]
            assert got == naive.in_box_naive(
                layer, lon0, lat0, lon1, lat1, z_lo, z_hi, t0, t1, g
            )
        hits = 0
        for _ in range(300):
            x, y = rng.uniform(-500, 500, 2)
            zz = float(rng.uniform(-10, 150))
            t = None if rng.random() < 0.3 else float(rng.uniform(0, 86400))
            g = float(rng.uniform(0, 20))
            lon, lat = _lonlat(x, y)
            got = [
                z.id for z in layer.at_point(lon, lat, zz, "AMSL", t_s=t, ground_m=g)
            ]
            xl, yl = FRAME.to_local(lon, lat)
            want = naive.at_point_naive(layer, float(xl), float(yl), zz, t, g)
            assert got == want
            hits += len(got)
        assert hits > 20  # the test exercised containment, not only misses

    def test_in_box_rejects_inverted_box(self):
        with pytest.raises(ZoneError, match="box: min must not exceed max"):
            ZoneLayer(FRAME).in_box(25.0, 60.0, 24.0, 61.0)


# --------------- segment_intersects
def _random_segment(rng, lz):
    bx0, by0, bx1, by1 = lz.bounds_m
    cx, cy = 0.5 * (bx0 + bx1), 0.5 * (by0 + by1)
    span = max(bx1 - bx0, by1 - by0)
    p0 = (
        cx + rng.uniform(-1.5, 1.5) * span,
        cy + rng.uniform(-1.5, 1.5) * span,
        float(rng.uniform(-20, 180)),
    )
    if rng.random() < 0.15:  # vertical segment
        p1 = (p0[0], p0[1], float(rng.uniform(-20, 180)))
    else:
        p1 = (
            cx + rng.uniform(-1.5, 1.5) * span,
            cy + rng.uniform(-1.5, 1.5) * span,
            float(rng.uniform(-20, 180)) if rng.random() < 0.8 else p0[2],
        )
    return p0, p1


def test_segment_intersects_vs_dense_sampling():
    rng = np.random.default_rng(11)
    n_true = n_false = 0
    for n in range(250):
        lz = LocalZone(random_zone(rng, f"S{n}", extent_m=50.0), FRAME)
        g = float(rng.uniform(0, 15))
        margin = 0.0 if rng.random() < 0.4 else float(rng.uniform(0, 15))
        p0, p1 = _random_segment(rng, lz)
        got = segment_intersects(lz, p0, p1, ground_m=g, margin_m=margin)
        length = math.dist(p0, p1)
        step = length / 4000
        gap = naive.segment_gap_sampled(lz, p0, p1, g)
        # a sampled point within margin => True
        if gap <= margin:
            assert got, (lz, p0, p1, g, margin, gap)
        # True => some point within margin (sampling error bounded by one step)
        if got:
            assert gap <= margin + step + 1e-6, (lz, p0, p1, g, margin, gap)
            n_true += 1
        else:
            n_false += 1
    assert n_true > 40 and n_false > 40


def test_segment_inside_band_and_shape_is_true_and_above_false():
    lz = LocalZone(circle_zone("A", 0, 0, 50, lo=(0, "AGL"), hi=(120, "AGL")), FRAME)
    assert segment_intersects(lz, (0, 0, 60), (1, 0, 60), ground_m=5.0)  # fully inside
    assert not segment_intersects(lz, (-100, 0, 126), (100, 0, 126), ground_m=5.0)
    assert segment_intersects(
        lz, (-100, 0, 126), (100, 0, 126), ground_m=5.0, margin_m=1.0
    )
    assert not segment_intersects(lz, (-100, 60, 50), (100, 60, 50), ground_m=5.0)
    assert segment_intersects(
        lz, (-100, 60, 50), (100, 60, 50), ground_m=5.0, margin_m=10
    )


def test_segment_intersects_with_varying_ground_is_conservative():
    grid = GridSpec(
        x0_m=-100, y0_m=-100, z0_m=0, dx_m=2, dz_m=2, nx=100, ny=100, nz=100
    )
    rng = np.random.default_rng(3)
    ground = rng.uniform(0, 30, (100, 100)).astype(np.float32)
    fn = ground_range_from_grid(grid, ground)
    lz = LocalZone(circle_zone("A", 0, 0, 20, lo=(10, "AGL"), hi=(40, "AGL")), FRAME)
    for _ in range(200):
        p0 = (*rng.uniform(-60, 60, 2), float(rng.uniform(0, 100)))
        p1 = (*rng.uniform(-60, 60, 2), float(rng.uniform(0, 100)))
        got = segment_intersects(lz, p0, p1, ground_m=fn)
        for t in np.linspace(0, 1, 400):
            x, y, z = (p0[q] + t * (p1[q] - p0[q]) for q in range(3))
            i, j = grid.column_of(x, y)
            if lz.contains_2d(x, y) and ground[i, j] + 10 <= z <= ground[i, j] + 40:
                assert got
                break


def test_segment_margin_must_be_non_negative():
    lz = LocalZone(circle_zone(), FRAME)
    with pytest.raises(ZoneError, match="margin_m must be >= 0"):
        segment_intersects(lz, (0, 0, 0), (1, 1, 1), margin_m=-1)


# --------------- rasterization
def _dense(grid, out):
    i0, i1, j0, j1, k_lo, k_hi = out
    mask = np.zeros(grid.shape, dtype=bool)
    ks = np.arange(grid.nz)
    for a in range(i1 - i0):
        for b in range(j1 - j0):
            mask[i0 + a, j0 + b] = (ks >= k_lo[a, b]) & (ks <= k_hi[a, b])
    return mask


def test_zone_voxels_vs_shapely_oracle():
    rng = np.random.default_rng(5)
    n_touched = 0
    for n in range(40):
        dx = float(rng.choice([1.0, 2.0, 3.7]))
        dz = float(rng.choice([1.0, 2.0, 2.5]))
        grid = GridSpec(
            x0_m=-101.3,
            y0_m=-97.1,
            z0_m=float(rng.uniform(-5, 5)),
            dx_m=dx,
            dz_m=dz,
            nx=int(200 / dx),
            ny=int(190 / dx),
            nz=int(80 / dz),
        )
        ground = rng.uniform(0, 12, (grid.nx, grid.ny)).astype(np.float32)
        lz = LocalZone(random_zone(rng, f"R{n}", extent_m=90.0), FRAME)
        margin = 0.0 if n % 2 == 0 else float(rng.uniform(0, 6))
        got = _dense(grid, zone_voxels(lz, grid, ground, margin_m=margin))
        want = naive.zone_voxels_naive(lz, grid, ground, margin)
        assert not np.any(want & ~got), f"kernel misses voxels for {lz.zone}"
        extra = np.argwhere(got & ~want)
        for i, j, _k in extra:  # only boundary-touch rounding may differ
            assert naive.cell_distance(lz, grid, i, j) <= margin + 1e-4
        assert extra.shape[0] <= max(2, 0.002 * want.sum())
        n_touched += int(want.sum())
    assert n_touched > 1000


def test_zone_voxels_special_shapes_vs_oracle():
    grid = GridSpec(x0_m=-50, y0_m=-50, z0_m=0, dx_m=2, dz_m=2, nx=50, ny=50, nz=20)
    ground = np.random.default_rng(2).uniform(0, 5, (50, 50)).astype(np.float32)
    shapes = [
        [(-10, -10), (10, -10), (10, 10), (-10, 10)],  # on grid lines
        [(-80, -79), (80, 77), (81, 80), (-79, -76)],  # long thin diagonal, off-grid
        [(30, 30), (90, 30), (90, 90), (30, 90)],  # partly outside the grid
        [(-40, -40), (40, -40), (40, 40), (0, -20), (-40, 40)],  # concave notch
        star_polygon_local(np.random.default_rng(9), 3.3, -4.1, 45.0, 60),
    ]
    for n, pts in enumerate(shapes):
        lz = LocalZone(poly_zone(f"S{n}", pts, (1.0, "AGL"), (21.0, "AMSL")), FRAME)
        for margin in (0.0, 2.0, 3.3):
            got = _dense(grid, zone_voxels(lz, grid, ground, margin_m=margin))
            want = naive.zone_voxels_naive(lz, grid, ground, margin)
            assert not np.any(want & ~got), (n, margin)
            for i, j, _k in np.argwhere(got & ~want):
                assert naive.cell_distance(lz, grid, i, j) <= margin + 1e-4


def test_zone_voxels_touch_not_centre():
    # a 0.3 m circle inside one 2 m cell, far from its centre: the cell is touched
    grid = GridSpec(x0_m=-10, y0_m=-10, z0_m=0, dx_m=2, dz_m=2, nx=10, ny=10, nz=10)
    lz = LocalZone(
        circle_zone("T", 0.6, 0.6, 0.3, lo=(3, "AMSL"), hi=(5, "AMSL")), FRAME
    )
    mask = _dense(grid, zone_voxels(lz, grid, np.zeros((10, 10), np.float32)))
    assert np.argwhere(mask).tolist() == [[5, 5, 1], [5, 5, 2]]


def test_zone_voxels_agl_follows_ground_and_outside_grid():
    grid = GridSpec(x0_m=-10, y0_m=-10, z0_m=0, dx_m=2, dz_m=1, nx=10, ny=10, nz=50)
    ground = np.zeros((10, 10), np.float32)
    ground[5, 5] = 20.0
    lz = LocalZone(circle_zone("G", 1, 1, 0.5, lo=(0, "AGL"), hi=(10, "AGL")), FRAME)
    i0, _i1, j0, _j1, k_lo, k_hi = zone_voxels(lz, grid, ground)
    a, b = 5 - i0, 5 - j0
    assert (k_lo[a, b], k_hi[a, b]) == (20, 30)
    far = LocalZone(circle_zone("F", 500, 500, 10), FRAME)
    assert zone_voxels(far, grid, ground)[:4] == (0, 0, 0, 0)
    with pytest.raises(ZoneError, match=r"ground_m must have shape \(10, 10\)"):
        zone_voxels(lz, grid, np.zeros((3, 3)))


def test_zone_voxels_band_spans_lowest_to_highest_ground_of_a_cell():
    """A coarse cell with ground 0..30 m and a 0-10 m AGL zone: every height from 0 to
    40 m may be inside the zone somewhere in the cell, so all those layers are touched
    (two separate calls with the min and the max ground would leave 10-30 m out)."""
    f = Frame(24.94, 60.17)
    lz = LocalZone(Zone(id="THIN", circle=Circle(24.94, 60.17, 30.0),
                        lower=Altitude(0.0, "AGL"), upper=Altitude(10.0, "AGL")), f)
    grid = GridSpec(x0_m=-100.0, y0_m=-100.0, z0_m=0.0, dx_m=8.0, dz_m=2.0, nx=25, ny=25,
                    nz=40)
    lo = np.zeros((25, 25))
    hi = np.full((25, 25), 30.0)
    i0, i1, j0, j1, k_lo, k_hi = zone_voxels(lz, grid, lo, ground_hi_m=hi)
    c = (12 - i0, 12 - j0)   # the cell under the centre
    assert k_lo[c] == 0 and k_hi[c] == 20  # 0 m .. 40 m AMSL
    _, _, _, _, k_lo1, k_hi1 = zone_voxels(lz, grid, lo)
    assert k_hi1[c] == 5                   # one ground only: 0 m .. 10 m


@pytest.mark.parametrize("nx,ny", [(1, 1), (7, 40), (33, 17), (100, 129)])
def test_ground_range_is_the_exact_min_max_of_the_box(nx, ny):
    """The block-accelerated ground range equals numpy's min/max over the clamped
    bounding box of the segment's columns, for boxes cut by block edges anywhere."""
    grid = GridSpec(x0_m=-50, y0_m=20, z0_m=0, dx_m=2, dz_m=2, nx=nx, ny=ny, nz=10)
    rng = np.random.default_rng(nx * 1000 + ny)
    ground = rng.normal(10.0, 5.0, (nx, ny)).astype(np.float32)
    fn = ground_range_from_grid(grid, ground)
    g = ground.astype(np.float64)
    for _ in range(300):
        x0, x1 = rng.uniform(-80, -50 + 2 * nx + 30, 2)
        y0, y1 = rng.uniform(-10, 20 + 2 * ny + 30, 2)
        i0, i1 = sorted(int(np.clip((v + 50) // 2, 0, nx - 1)) for v in (x0, x1))
        j0, j1 = sorted(int(np.clip((v - 20) // 2, 0, ny - 1)) for v in (y0, y1))
        sub = g[i0:i1 + 1, j0:j1 + 1]
        assert fn(x0, y0, x1, y1) == (sub.min(), sub.max())


def test_ground_range_with_missing_ground_stays_nan():
    grid = GridSpec(x0_m=0, y0_m=0, z0_m=0, dx_m=1, dz_m=1, nx=40, ny=40, nz=10)
    ground = np.zeros((40, 40))
    ground[20, 20] = np.nan
    fn = ground_range_from_grid(grid, ground)
    assert all(math.isnan(v) for v in fn(0, 0, 39, 39))
    assert fn(0, 0, 10, 10) == (0.0, 0.0)


def test_validator_zone_hit_is_the_first_segment_meeting_the_zone():
    """``planner.validate._zone_hit`` on polylines around random zones (always active,
    flat ground): a segment with a sampled point in the volume makes it report that
    segment or an earlier one; a reported segment really comes within one sampling step
    of the volume (oracle: tests/naive, shapely distances on the sampled points)."""
    from dataclasses import replace

    from skytwin.planner.validate import _zone_hit
    rng = np.random.default_rng(23)
    hits = misses = 0
    for n in range(200):
        lz = LocalZone(replace(random_zone(rng, f"V{n}", extent_m=50.0), window=None),
                       FRAME)
        g = float(rng.uniform(0, 15))
        pts = [_random_segment(rng, lz)[0] for _ in range(int(rng.integers(2, 8)))]
        xyz = np.array(pts, dtype=np.float64)
        t = np.arange(len(xyz), dtype=np.float64) * 10.0
        got = _zone_hit(lz, xyz, t, lambda *a: (g, g))
        gaps = [naive.segment_gap_sampled(lz, xyz[s], xyz[s + 1], g)
                for s in range(len(xyz) - 1)]
        first = next((s for s, gap in enumerate(gaps) if gap <= 0.0), None)
        if first is not None:
            assert got is not None and got <= first, (n, got, first)
        if got is not None:
            step = math.dist(xyz[got], xyz[got + 1]) / 4000
            assert gaps[got] <= step + 1e-6, (n, got, gaps[got])
            hits += 1
        else:
            misses += 1
    assert hits > 30 and misses > 30
