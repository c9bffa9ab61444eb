"""Refresh the vendored JavaScript of the web map (maintainers only; users never run it).

Usage: ``python -m skytwin.server.web.vendor`` (needs ``npm`` and the npm registry).

What it does, for each package in :data:`PACKAGES`: ``npm pack NAME@VERSION`` into a
temporary folder (npm checks the registry's integrity hash), copies the released
minified bundle ``dist.min.js`` and the ``LICENSE`` into ``static/vendor/``, and writes
``static/vendor/VENDOR.md`` with the versions and SHA-256 of the released and of the
shipped files.

One change is made to the released bundles: every absolute ``http://`` or ``https://``
URL naming another host is rewritten to ``urn:offline:`` + the rest. The map is served
fully offline and its assets must name no other host. In deck.gl 9.4 these URLs are
comments (Wikipedia links) and the loaders.gl default ``CDN`` for web workers, which
the map never uses (it hands deck.gl plain arrays, nothing goes through loaders.gl).
The page's Content-Security-Policy (``default-src 'self'``) forbids any other host in
any case.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

__all__ = ["PACKAGES", "VENDOR_DIR", "offline", "vendor"]

VENDOR_DIR = Path(__file__).resolve().parent / "static" / "vendor"

#: (npm name, version, file name in static/vendor)
PACKAGES = (
    ("@deck.gl/core", "9.4.0", "deck.gl-core.min.js"),
    ("@deck.gl/layers", "9.4.0", "deck.gl-layers.min.js"),
)

_URL = re.compile(rb"https?://(?=[A-Za-z0-9])")


def offline(data: bytes) -> tuple[bytes, int]:
    """``data`` with every absolute URL to a host rewritten; ``(bytes, count)``.

    Examples
    --------
    >>> offline(b'// see https://example.org/x ; s.startsWith("https://")')
    (b'// see urn:offline:example.org/x ; s.startsWith("https://")', 1)
    """
    return _URL.subn(b"urn:offline:", data)


def vendor(out_dir: Path = VENDOR_DIR) -> None:
    """Fetch every package with npm and write the bundles, licences and VENDOR.md."""
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, version, fname in PACKAGES:
            tgz = subprocess.run(["npm", "pack", f"{name}@{version}", "--silent"],
                                 cwd=tmp, check=True, capture_output=True,
                                 text=True).stdout.strip().splitlines()[-1]
            dest = Path(tmp) / fname
            with tarfile.open(Path(tmp) / tgz) as tf:
                tf.extractall(dest, filter="data")
            raw = (dest / "package" / "dist.min.js").read_bytes()
            shipped, n = offline(raw)
            (out_dir / fname).write_bytes(shipped)
            lic = fname.replace(".min.js", ".LICENSE.txt")
            shutil.copyfile(dest / "package" / "LICENSE", out_dir / lic)
            rows.append((name, version, fname, lic, hashlib.sha256(raw).hexdigest(),
                         hashlib.sha256(shipped).hexdigest(), n))
    lines = ["# Vendored JavaScript (written by `python -m skytwin.server.web.vendor`)",
             "", "Released minified bundles from the npm registry, with their licences. "
             "The only change: absolute URLs to other hosts (comments, and the unused "
             "loaders.gl worker CDN default) rewritten to `urn:offline:...` (see the "
             "script's docstring).", "",
             "| package | version | file | licence | sha256 released | sha256 shipped "
             "| URLs rewritten |", "|---|---|---|---|---|---|---|"]
    lines += [f"| {a} | {b} | {c} | {d} (MIT) | `{e}` | `{f}` | {g} |"
              for a, b, c, d, e, f, g in rows]
    (out_dir / "VENDOR.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    vendor(Path(sys.argv[1]) if len(sys.argv) > 1 else VENDOR_DIR)
