"""Every ``skytwin`` subcommand, given wrong arguments, ends in one line and an exit code.

The cases are the mistakes a new user makes (issue 10 lists them): each must end with
exit code 2, nothing on stdout, exactly one line on stderr (a JSON object
``{"error": {"code", "message"}}`` with ``--json`` and for ``client``), no traceback, and
no work done first (no database, no output file). Most cases run in-process through
:func:`skytwin.server.cli.main` (fast); the ones about processes (a busy port, Ctrl-C,
``python -m skytwin`` itself) run as subprocesses.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from skytwin.server.cli import main
from tests.conftest import FIXTURES, ROOT

CITY = FIXTURES / "city" / "helsinki_centre.geojson"
ZONES = FIXTURES / "zones" / "example_ed269.json"
FROM, TO = "24.94030,60.17150", "24.95240,60.16760"
MISSING = "/nonexistent-folder-skytwin/out"


def _pem_pair(tmp: Path, name: str) -> tuple[Path, Path]:
    cert, key = tmp / f"{name}.crt", tmp / f"{name}.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                    str(key), "-out", str(cert), "-days", "1", "-subj", f"/CN={name}"],
                   check=True, capture_output=True)
    return cert, key


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli_errors")
    f = {"tmp": tmp, "text": tmp / "notes.txt", "existing": tmp / "existing.file"}
    f["text"].write_text("hello\n")
    f["existing"].write_text("x")
    try:
        f["cert_a"], f["key_a"] = _pem_pair(tmp, "a")
        f["cert_b"], f["key_b"] = _pem_pair(tmp, "b")
    except (OSError, subprocess.CalledProcessError):
        f["cert_a"] = f["key_a"] = f["cert_b"] = f["key_b"] = None
    return f


# (argv, fragment expected in the message); "{x}" names are filled from ``files``
CASES = [
    # twin build
    (["twin", "build", "--resolution", "1000000"], "horizontal voxel size"),
    (["twin", "build", "--resolution", "0"], "horizontal voxel size"),
    (["twin", "build", "--layer", "-2"], "vertical layer"),
    (["twin", "build", "--clearance", "nan"], "clearance"),
    (["twin", "build", "--resolution", "two"], "expected a number"),
    (["twin", "build", "/no/such/city.geojson"], "no such file"),
    (["twin", "build", "--out", f"{MISSING}/twin.npz"], "does not exist"),
    (["twin", "build", "--png", f"{MISSING}/t.png"], "does not exist"),
    (["twin", "build", "--geojson", f"{MISSING}/t.geojson", "--json"], "does not exist"),
    (["twin", "build", "--out", "{tmp}"], "is a folder"),
    (["twin", "build", "{text}", "--json"], "notes.txt"),
    (["twin", "build", "--bogus"], "unrecognized arguments"),
    (["twin"], "required"),
    # twin info
    (["twin", "info"], "required"),
    (["twin", "info", "/no/such/twin.npz"], "no such file"),
    (["twin", "info", str(CITY)], "not a saved SkyTwin twin"),
    (["twin", "info", str(CITY), "--json"], "skytwin twin build"),
    (["twin", "info", "{text}"], "not a saved SkyTwin twin"),
    # route
    (["route", "--to", TO], "--from"),
    (["route", "--from", "24.94", "--to", TO], "LON,LAT"),
    (["route", "--from", "a,b", "--to", TO, "--json"], "LON,LAT"),
    (["route", "--from", "200,60", "--to", TO], "longitude"),
    (["route", "--from", FROM, "--to", TO, "--depart", "tomorrow"], "ISO 8601"),
    (["route", "--from", FROM, "--to", TO, "--zones", "/no/zones.json"], "no such file"),
    (["route", "--from", FROM, "--to", TO, "--zones", "{text}"], "notes.txt"),
    (["route", "--from", FROM, "--to", TO, "--twin", str(CITY)], "not a saved SkyTwin"),
    (["route", "--from", FROM, "--to", TO, "--geojson", f"{MISSING}/r.geojson"],
     "does not exist"),
    (["route", "--from", FROM, "--to", TO, "--czml", f"{MISSING}/r.czml"], "does not exist"),
    (["route", "--from", FROM, "--to", TO, "--png", f"{MISSING}/r.png"], "does not exist"),
    (["route", "--from", FROM, "--to", TO, "--city", str(CITY), "--twin", str(CITY)],
     "not allowed with"),
    # fleet
    (["fleet", "--flights", "0"], "at least 1"),
    (["fleet", "--flights", "many"], "expected an integer"),
    (["fleet", "--method", "magic"], "invalid choice"),
    (["fleet", "--budget", "-1", "--json"], "more than 0"),
    (["fleet", "--duration", "0"], "more than 0"),
    (["fleet", "--depart", "soon"], "ISO 8601"),
    (["fleet", "--geojson", f"{MISSING}/f.geojson"], "does not exist"),
    (["fleet", "--czml", f"{MISSING}/f.czml"], "does not exist"),
    (["fleet", "--png", f"{MISSING}/f.png"], "does not exist"),
    (["fleet", "--twin", "{text}"], "not a saved SkyTwin"),
    # demo
    (["demo", "--out", "{existing}"], "not a folder"),
    (["demo", "--out", f"{MISSING}/demo"], "does not exist"),
    # serve
    (["serve", "--port", "70000"], "between 0 and 65535"),
    (["serve", "--port", "-1"], "between 0 and 65535"),
    (["serve", "--port", "http"], "expected an integer"),
    (["serve", "--host", "no-such-host.invalid", "--port", "0"], "does not resolve"),
    (["serve", "--db", f"{MISSING}/skytwin.db"], "does not exist"),
    (["serve", "--db", "{tmp}"], "is a folder"),
    (["serve", "--auth", "/no/tokens.toml"], "no such file"),
    (["serve", "--auth", "{text}", "--port", "0"], "notes.txt"),
    (["serve", "--tls-cert", "{cert_a}"], "both --tls-cert and --tls-key"),
    (["serve", "--tls-cert", "{cert_a}", "--tls-key", "{key_b}"], "does not belong"),
    (["serve", "--tls-cert", "{text}", "--tls-key", "{text}"], "not a PEM"),
    (["serve", "--tls-cert", "/no/cert.pem", "--tls-key", "{key_a}"], "no such file"),
    (["serve", "--twin", str(CITY)], "not a saved SkyTwin twin"),
    (["serve", "--workers", "0"], "at least 1"),
    # client (always JSON)
    (["client", "--target", "127.0.0.1", "info"], "port is required"),
    (["client", "--target", "127.0.0.1:0", "info"], "1..65535"),
    (["client", "--target", "127.0.0.1:99999", "info"], "1..65535"),
    (["client", "--target", "no-such-host.invalid:50051", "info"], "does not resolve"),
    (["client", "--target", "[::1:50051", "info"], "unclosed"),
    (["client", "--ca", "/no/ca.pem", "info"], "no such file"),
    (["client"], "required"),
    (["client", "teleport"], "invalid choice"),
    (["client", "encode", "--at", FROM], "--alt"),
    (["client", "encode", "--at", "x", "--alt", "10"], "LON,LAT"),
    (["client", "encode", "--at", FROM, "--alt", "10:SEA"], "AGL or AMSL"),
    (["client", "decode"], "required"),
    (["client", "blocked", "--box", "1,2,3", "--band", "0,40"], "--box"),
    (["client", "blocked", "--box", "1,2,3,4", "--band", "x"], "--band"),
    (["client", "blocked", "--box", "1,2,3,4", "--band", "0,40", "--time", "x"], "ISO"),
    (["client", "plan", "--from", FROM], "--to"),
    (["client", "plan", "--from", "1", "--to", TO], "LON,LAT"),
    (["client", "submit", "--from", FROM, "--to", TO], "--request-id"),
    (["client", "submit", "--from", FROM, "--to", TO, "--request-id", "r", "--max-delay",
      "-5"], "at least 0"),
    (["client", "batch", "--request-id", "r", "--pair", FROM], "--pair"),
    (["client", "get"], "required"),
    (["client", "list", "--status", "flying"], "invalid choice"),
    (["client", "list", "--page-size", "0"], "at least 1"),
    (["client", "cancel"], "required"),
    (["client", "watch", "--since", "-1"], "at least 0"),
    (["client", "watch", "--box", "1,2"], "--box"),
    (["client", "watch", "--timeout", "0"], "more than 0"),
    (["client", "zones"], "required"),
    (["client", "zones", "add", "--id", "Z"], "--circle"),
    (["client", "zones", "add", "--id", "Z", "--circle", "1,2"], "--circle"),
    (["client", "zones", "update", "--id", "Z", "--polygon", "1,2;3"], "--polygon"),
    (["client", "zones", "add", "--id", "Z", "--circle", "24.9,60.1,50", "--upper", "x"],
     "altitude"),
    (["client", "zones", "get"], "required"),
    (["client", "zones", "delete"], "required"),
    (["client", "zones", "query"], "--box"),
    (["client", "zones", "import", "/no/zones.json"], "no such file"),
    (["client", "zones", "export", "--out", f"{MISSING}/z.json"], "does not exist"),
    # loadtest
    (["loadtest"], "--target"),
    (["loadtest", "--target", "10.0.0.1:50051"], "--allow-remote"),
    (["loadtest", "--target", "example.com:443", "--json"], "not a loopback address"),
    (["loadtest", "--target", "127.0.0.1"], "port is required"),
    (["loadtest", "--target", "127.0.0.1:5", "--drones", "0"], "at least 1"),
    (["loadtest", "--target", "127.0.0.1:5", "--duration", "-3"], "more than 0"),
    (["loadtest", "--target", "127.0.0.1:5", "--tokens", "/no/t.toml"], "no such file"),
    # the top level
    ([], "required"),
    (["fly"], "invalid choice"),
]


def _fill(argv, files):
    out = []
    for a in argv:
        if a.startswith("{") and a.endswith("}"):
            v = files[a[1:-1]]
            if v is None:
                pytest.skip("openssl is not available to make test certificates")
            a = str(v)
        out.append(a)
    return out


def _is_json(argv) -> bool:
    return "--json" in argv or (bool(argv) and argv[0] == "client")


def assert_one_line_error(rc, out, err, argv, fragment=None):
    assert rc == 2, (argv, rc, out, err)
    assert out == "", (argv, out)
    assert "Traceback" not in err, (argv, err)
    lines = err.splitlines()
    assert len(lines) == 1, (argv, err)
    if _is_json(argv):
        obj = json.loads(lines[0])
        assert set(obj) == {"error"} and set(obj["error"]) == {"code", "message"}, obj
        assert obj["error"]["code"].isupper() and obj["error"]["message"]
        message = obj["error"]["message"]
    else:
        assert lines[0].startswith("error: "), (argv, err)
        message = lines[0]
    if fragment:
        assert fragment in message, (argv, message)
    return message


@pytest.mark.parametrize("argv, fragment", CASES, ids=[" ".join(c[0])[:60] for c in CASES])
def test_wrong_arguments_give_one_line(argv, fragment, files, capsys, monkeypatch):
    monkeypatch.chdir(files["tmp"])       # a default skytwin.db would land here
    argv = _fill(argv, files)
    rc = main(argv)
    cap = capsys.readouterr()
    message = assert_one_line_error(rc, cap.out, cap.err, argv, fragment)
    assert "pickle" not in message
    assert not (files["tmp"] / "skytwin.db").exists()


def test_resolution_message_is_about_the_resolution(capsys):
    assert main(["twin", "build", "--resolution", "1000000"]) == 2
    err = capsys.readouterr().err
    assert "resolution" in err and "CRS" not in err and "km" not in err


def test_help_shows_defaults_and_every_option_has_help(capsys):
    from skytwin.server.cli import build_parser

    def walk(parser, path):
        yield path, parser
        for act in parser._actions:
            if hasattr(act, "choices") and isinstance(act.choices, dict):
                for name, sub in act.choices.items():
                    yield from walk(sub, (*path, name))

    seen = []
    for path, parser in walk(build_parser(), ()):
        seen.append(" ".join(path))
        for act in parser._actions:
            if act.option_strings and act.dest != "help":
                assert act.help, (path, act.option_strings)
        text = parser.format_help()
        assert "``" not in text
        if path == ("twin", "build"):
            assert "(default: 2.0)" in text
        if path == ("serve",):
            assert "(default: 50051)" in text
    for name in ("twin build", "twin info", "route", "fleet", "demo", "serve", "loadtest",
                 "client watch", "client zones export"):
        assert name in seen
    assert main(["--help"]) == 0
    assert "``" not in capsys.readouterr().out


def test_readme_lists_every_subcommand_and_stays_inside_the_repository():
    from skytwin.server.cli import build_parser
    readme = (ROOT / "README.md").read_text()
    top = next(a for a in build_parser()._actions if isinstance(a.choices, dict))
    for name, sub in top.choices.items():
        nested = [a for a in sub._actions if isinstance(a.choices, dict)]
        names = [f"{name} {n}" for n in nested[0].choices] if name == "twin" else [name]
        for full in names:
            assert f"skytwin {full}" in readme, full
    assert "../shared/DESIGN.md" not in readme
    assert (ROOT / "docs" / "ARCHITECTURE.md").exists() and "docs/ARCHITECTURE.md" in readme


# ----------------------------------------------------------------- as a process
def _skytwin(*args, **kw):
    return subprocess.run([sys.executable, "-m", "skytwin", *args], capture_output=True,
                          text=True, timeout=120, cwd=kw.pop("cwd", None), check=False)


def test_busy_port_is_one_line_before_the_database_is_created(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        db = tmp_path / "store.db"
        r = _skytwin("serve", "--port", str(port), "--db", str(db))
    assert_one_line_error(r.returncode, r.stdout, r.stderr, ["serve"], "already in use")
    assert not db.exists()
    r = _skytwin("twin", "info", str(CITY), "--json")
    msg = assert_one_line_error(r.returncode, r.stdout, r.stderr, ["--json"],
                                "not a saved SkyTwin twin")
    assert "pickle" not in msg


def _clean_sigint():
    """In the child before exec: SIGINT unblocked and at its default, as a shell gives
    it (a child inherits ignored and blocked signals, and this pytest process may carry
    either from the servers and threads of earlier tests)."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _interrupt(proc, wait_s):
    time.sleep(wait_s)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    return proc.returncode, out, err


@pytest.mark.parametrize("unbuffered", [True, False])
def test_output_piped_into_a_reader_that_closed_is_quiet(tmp_path, unbuffered):
    """``skytwin client info | head -c 0``: the reader has gone before the answer is
    printed; exit 0 and nothing on stderr (it once printed an UNAVAILABLE error, as if
    the server were down). Unbuffered, the write fails inside the command; buffered,
    at the final flush."""
    from tests.grpc_fixtures import OP_A, start_server
    srv = start_server(tmp_path / "store.db")
    try:
        env = dict(os.environ)
        env.pop("PYTHONUNBUFFERED", None)
        if unbuffered:
            env["PYTHONUNBUFFERED"] = "1"
        proc = subprocess.Popen([sys.executable, "-m", "skytwin", "client", "--target",
                                 srv.target, "--token", OP_A, "info"], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        proc.stdout.close()          # long before the child has connected and answered
        err = proc.stderr.read().decode()
        assert proc.wait(timeout=120) == 0, err
        assert err == "", err
    finally:
        srv.stop()


@pytest.mark.xfail(strict=False, raises=subprocess.TimeoutExpired, reason=(
    "open defect: in three fresh-clone .ci/run suites of 2026-11-30 a live `client watch` "
    "child ignored SIGINT for 60 s (never reproduced alone or in a warm checkout; cause "
    "not found); any other failure of this test still fails the suite"))
def test_ctrl_c_is_quiet(tmp_path, capsys):
    """Ctrl-C on a live ``client watch`` and during ``fleet``: exit 130, nothing printed.

    The watch is interrupted once it has printed a change (a regulator's zone import
    replayed with ``--since 0``), so the Ctrl-C lands in the stream, not in the imports.
    """
    import select

    from tests.grpc_fixtures import OP_A, REG, start_server
    srv = start_server(tmp_path / "store.db")
    try:
        assert main(["client", "--target", srv.target, "--token", REG, "zones", "import",
                     str(ROOT / "fixtures" / "zones" / "example_ed269.json")]) == 0
        capsys.readouterr()
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        watch = subprocess.Popen([sys.executable, "-m", "skytwin", "client", "--target",
                                  srv.target, "--token", OP_A, "watch", "--since", "0"],
                                 env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True, preexec_fn=_clean_sigint)
        ready, _, _ = select.select([watch.stdout], [], [], 120.0)
        assert ready, "client watch printed no change within 120 s"
        assert json.loads(watch.stdout.readline())
        rc, out, err = _interrupt(watch, 0.2)
        assert rc == 130 and "Traceback" not in err and err.strip() == "", err
        # a long job (builds the twin, then plans thousands of flights) stopped midway
        fleet = subprocess.Popen([sys.executable, "-m", "skytwin", "fleet", "--flights",
                                  "5000", "--json"], env=env, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True, cwd=ROOT,
                                 preexec_fn=_clean_sigint)
        rc, out, err = _interrupt(fleet, 2.5)
        assert rc == 130 and err == "" and out == "", err
    finally:
        srv.stop()
