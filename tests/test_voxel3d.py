"""planner.voxel3d: Moving AI .3dmap / .3dscen reader."""

from __future__ import annotations

import numpy as np
import pytest

from skytwin.airspace.errors import MalformedInputError
from skytwin.planner.voxel3d import read_map, read_scenarios

# From /work/shared/data/voxel3d/PROVENANCE.md: dims, blocked voxels, scenarios,
# optimal length min / max.
PROVENANCE = {
    "Simple": ((105, 132, 105), 512, 10_000, 3.83, 48.27),
    "Complex": ((246, 154, 205), 46_298, 10_000, 4.41, 169.64),
    "DA1": ((389, 313, 511), 140_501, 10_000, 9.41, 467.87),
}


@pytest.mark.parametrize("name", sorted(PROVENANCE))
def test_bundled_maps_match_provenance(voxel3d_data, name):
    dims, n_blocked, n_scen, lmin, lmax = PROVENANCE[name]
    blocked = read_map(voxel3d_data / f"{name}.3dmap")
    assert blocked.shape == dims and blocked.dtype == np.uint8
    assert int(blocked.sum()) == n_blocked
    scen = read_scenarios(voxel3d_data / f"{name}.3dmap.3dscen")
    assert scen.map_name == f"{name}.3dmap" and len(scen) == n_scen
    assert round(float(scen.length.min()), 2) == lmin
    assert round(float(scen.length.max()), 2) == lmax
    assert (scen.start < np.array(dims)).all() and (scen.goal < np.array(dims)).all()
    assert (
        not blocked[tuple(scen.start.T)].any() and not blocked[tuple(scen.goal.T)].any()
    )


def test_first_lines_are_read_in_order(voxel3d_data):
    blocked = read_map(voxel3d_data / "Simple.3dmap")
    assert blocked[50, 50, 50] == 1 and blocked[50, 50, 51] == 1
    scen = read_scenarios(voxel3d_data / "Simple.3dmap.3dscen")
    assert scen.start[0].tolist() == [56, 76, 52] and scen.goal[0].tolist() == [
        48,
        85,
        45,
    ]
    assert scen.length[0] == 15.31710829 and scen.ratio[0] == 1.054


def test_spread_takes_evenly_spaced_problems(tmp_path):
    lines = ["version 1", "m.3dmap"] + [f"{k} 0 0 0 0 0 {k}.0 1.0" for k in range(10)]
    p = tmp_path / "m.3dscen"
    p.write_text("\n".join(lines) + "\n")
    s = read_scenarios(p)
    assert s.spread(None) is s and s.spread(50) is s
    assert s.spread(4).start[:, 0].tolist() == [0, 3, 6, 9]
    with pytest.raises(ValueError, match="limit must be positive"):
        s.spread(0)


def test_rev_voxel_lists_free_voxels(tmp_path):
    p = tmp_path / "r.3dmap"
    p.write_text("rev_voxel 2 2 1\n0 0 0\n1 1 0\n")
    assert read_map(p)[:, :, 0].tolist() == [[0, 1], [1, 0]]


@pytest.mark.parametrize(
    "text,where,reason",
    [
        ("", "r.3dmap", "empty file"),
        ("voxels 2 2 2\n", r"r.3dmap \[line 1\]", "expected header 'voxel X Y Z'"),
        ("voxel 2 2 x\n", r"\[line 1\]", "dimensions must be integers"),
        ("voxel 2 0 2\n", r"\[line 1\]", "dimensions must be positive"),
        ("voxel 2 2 2\n0 0 0\n1 1\n", r"\[line 3\]", "expected 3 fields"),
        ("voxel 2 2 2\n0 a 0\n", r"\[line 2\]", "not an integer"),
        (
            "voxel 2 2 2\n0 0 0\n1 2 0\n",
            r"\[line 3\]",
            r"voxel \(1, 2, 0\) outside the map",
        ),
    ],
)
def test_bad_map_files(tmp_path, text, where, reason):
    p = tmp_path / "r.3dmap"
    p.write_text(text)
    with pytest.raises(MalformedInputError, match=f"{where}.*{reason}") as e:
        read_map(p)
    assert isinstance(e.value, ValueError) and e.value.path == str(p)


@pytest.mark.parametrize(
    "text,where,reason",
    [
        ("version 2\nm.3dmap\n", r"\[line 1\]", "expected 'version 1'"),
        ("version 1\n", r"\[line 2\]", "expected the map file name"),
        ("version 1\nm.3dmap\n0 0 0 1 1 1 1.7\n", r"\[line 3\]", "expected 8 fields"),
        ("version 1\nm.3dmap\n0 0 0 1 1 1 x 1.0\n", r"\[line 3\]", "bad number"),
        ("version 1\nm.3dmap\n0 -1 0 1 1 1 1.0 1.0\n", r"\[line 3\]", "negative voxel"),
    ],
)
def test_bad_scenario_files(tmp_path, text, where, reason):
    p = tmp_path / "m.3dscen"
    p.write_text(text)
    with pytest.raises(MalformedInputError, match=f"{where}.*{reason}"):
        read_scenarios(p)


def test_missing_file_is_a_typed_error(tmp_path):
    with pytest.raises(MalformedInputError, match="cannot read file"):
        read_map(tmp_path / "nope.3dmap")
