"""The ``skytwin`` command line, run as a person would (subprocesses)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np

from skytwin.airspace.twin import Twin

from tests.conftest import FIXTURES


def _run(*args):
    return subprocess.run(
        [sys.executable, "-m", "skytwin.server.cli", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def test_twin_build_json_save_and_info(tmp_path):
    out = tmp_path / "hel.npz"
    r = _run(
        "twin",
        "build",
        str(FIXTURES / "city" / "helsinki_centre.geojson"),
        "--json",
        "--out",
        str(out),
    )
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)
    assert {
        "buildings",
        "skipped",
        "bounds_wgs84",
        "grid",
        "blocked_fraction",
        "build_s",
        "peak_mem_mb",
    } <= set(s)
    assert 560 < s["buildings"] < 580 and s["skipped"] == len(s["skipped_objects"])
    assert all(o["reason"] for o in s["skipped_objects"])  # every skipped object says why
    assert 0.0 < s["blocked_fraction"] < 1.0
    lon0, lat0, lon1, lat1 = s["bounds_wgs84"]
    assert 24.93 < lon0 < lon1 < 24.96 and 60.16 < lat0 < lat1 < 60.18
    # no progress with --json (and none when stderr is not a terminal)
    assert r.stderr == ""
    info = _run("twin", "info", str(out), "--json")
    assert info.returncode == 0, info.stderr
    si = json.loads(info.stdout)
    for key in ("buildings", "bounds_wgs84", "grid", "blocked_fraction"):
        assert si[key] == s[key]
    twin = Twin.load(out)
    again = Twin.load(out)
    assert np.array_equal(twin.clear_top_m, again.clear_top_m)


def test_twin_build_human_summary_lists_skip_reasons():
    r = _run("twin", "build", "--quiet")
    assert r.returncode == 0, r.stderr
    for word in (
        "buildings",
        "skipped",
        "bounds (WGS84)",
        "grid",
        "blocked fraction",
        "build time",
        "peak memory",
    ):
        assert word in r.stdout


def test_bad_inputs_exit_2_with_a_clear_message(tmp_path):
    bad = tmp_path / "broken.city.json"
    bad.write_text('{"type": "CityJSON", "version": "2.0", "CityObj')
    r = _run("twin", "build", str(bad), "--json")
    assert r.returncode == 2 and r.stdout == ""
    err = json.loads(r.stderr)["error"]
    assert err["code"] == "INVALID_ARGUMENT" and "broken.city.json" in err["message"]
    r = _run("twin", "info", str(tmp_path / "missing.npz"))
    assert r.returncode == 2 and "missing.npz" in r.stderr
    r = _run("route", "--from", "24.94", "--to", "24.95,60.17", "--json")
    assert r.returncode == 2 and "LON,LAT" in json.loads(r.stderr)["error"]["message"]


def test_fleet_resolves_and_exports(tmp_path):
    r = _run("fleet", "--flights", "60", "--duration", "300", "--budget", "3", "--json",
             "--geojson", str(tmp_path / "f.geojson"), "--czml", str(tmp_path / "f.czml"),
             "--png", str(tmp_path / "f.png"))
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["flights"] >= 50 and out["residual"] == 0
    gj = json.loads((tmp_path / "f.geojson").read_text())
    kinds = {f["properties"]["kind"] for f in gj["features"]}
    assert "flight" in kinds and ("conflict" in kinds) == (out["conflicts_before"] > 0)
    cz = json.loads((tmp_path / "f.czml").read_text())
    assert cz[0]["id"] == "document" and len(cz) == 1 + out["flights"] - len(out["unplaced"])
    assert (tmp_path / "f.png").read_bytes()[:4] == b"\x89PNG"


def test_twin_exports(tmp_path):
    r = _run("twin", "build", "--quiet", "--png", str(tmp_path / "t.png"), "--geojson",
             str(tmp_path / "t.geojson"))
    assert r.returncode == 0, r.stderr
    gj = json.loads((tmp_path / "t.geojson").read_text())
    assert 560 < len(gj["features"]) < 580
    assert all(f["properties"]["height_agl_m"] > 0 for f in gj["features"])
    assert (tmp_path / "t.png").read_bytes()[:4] == b"\x89PNG"


def _run_with_tty_stderr(*args):
    """Run ``skytwin`` with stderr on a pseudo-terminal; ``(returncode, stdout, tty text)``."""
    import os
    import pty

    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "skytwin", *args], stdout=subprocess.PIPE,
                            stderr=slave, text=True)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 4096)
        except OSError:          # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    out = proc.stdout.read()
    proc.wait(timeout=300)
    os.close(master)
    return proc.returncode, out, b"".join(chunks).decode("utf-8", "replace")


def test_progress_on_a_terminal_only(tmp_path):
    out = tmp_path / "t.npz"
    rc, stdout, tty = _run_with_tty_stderr("twin", "build", "--out", str(out))
    assert rc == 0, tty
    assert "reading helsinki_centre.geojson (" in tty and " MB)" in tty
    assert "building twin (" in tty and " buildings)" in tty
    assert f"saving twin to {out}: done in" in tty
    assert "Traceback" not in tty and "buildings" in stdout
    # the same run with stderr not a terminal, or with --json: no progress at all
    r = _run("twin", "info", str(out))
    assert r.returncode == 0       # stderr holds only the audit's warnings, no progress
    assert all(line.startswith("warning: ") for line in r.stderr.splitlines()), r.stderr
    rc, stdout, tty = _run_with_tty_stderr("twin", "build", "--json")
    assert rc == 0 and tty == "" and json.loads(stdout)["buildings"] > 0


def test_real_data_skip_summary_counts_only_real_data_skips():
    from types import SimpleNamespace

    from tests.conftest import SHARED_DATA, real_data_skips, real_data_summary

    def skipped(reason):
        return SimpleNamespace(longrepr=("file.py", 1, f"Skipped: {reason}"))
    reports = [skipped(f"shared data not found at {SHARED_DATA / 'city'}"),
               skipped(f"{SHARED_DATA / 'city' / 'denhaag' / 'x.json'} not found"),
               skipped("needs openssl")]
    assert real_data_skips(reports) == 2
    line = real_data_summary(2)
    assert line.startswith("2 real-data tests skipped") and "SKYTWIN_DATA" in line
    assert "\n" not in line and real_data_summary(0) is None
