"""Reader for the Moving AI 3D voxel benchmark (``.3dmap`` maps, ``.3dscen`` scenarios).

The benchmark (Brewer & Sturtevant, "Benchmarks for Pathfinding in 3D Voxel Space",
SoCS 2018) is the external oracle of :mod:`planner.search`: every scenario line carries
the optimal path length under the strict no-corner-cutting rule, so the search must
reproduce it exactly.

Formats (plain ASCII)
---------------------
``.3dmap``::

    voxel X Y Z        # header: the word "voxel" and the three dimensions
    x y z              # one BLOCKED voxel per line, 0-based

The later ``rev_voxel X Y Z`` variant lists FREE voxels instead; it is read too.

``.3dscen`` (version 1)::

    version 1
    Simple.3dmap               # map file name
    sx sy sz gx gy gz L R      # start, goal, optimal length L, L / octile(start, goal)

Design
------
The map becomes a dense ``(X, Y, Z)`` ``uint8`` array indexed ``[x, y, z]`` (1 =
blocked), the layout :func:`planner.search.find_path` takes. Parsing goes through one
``numpy`` conversion of the whole token stream (a 1.6 MB map reads in well under a
second); every malformation raises :class:`airspace.errors.MalformedInputError` naming
the file and the line, so a person can find and fix it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from skytwin.airspace.errors import MalformedInputError

__all__ = ["Scenarios", "read_map", "read_scenarios"]


def _read_lines(path: Path) -> list[str]:
    try:
        text = Path(path).read_text(encoding="ascii")
    except UnicodeDecodeError as exc:
        raise MalformedInputError(
            path, None, f"not an ASCII text file ({exc})"
        ) from exc
    except OSError as exc:
        raise MalformedInputError(path, None, f"cannot read file ({exc})") from exc
    return text.splitlines()


def _int_rows(path: Path, lines: list[str], first_line: int, width: int, what: str):
    """Parse ``lines`` as rows of ``width`` integers; errors name the 1-based line."""
    rows = [ln.split() for ln in lines]
    for k, row in enumerate(rows):
        if len(row) != width:
            raise MalformedInputError(
                path,
                f"line {first_line + k}",
                f"expected {width} fields ({what}), got {len(row)}: {lines[k]!r}",
            )
    try:
        return np.array(rows, dtype=np.int64).reshape(-1, width)
    except ValueError:
        for k, row in enumerate(rows):
            try:
                [int(t) for t in row]
            except ValueError as exc:
                raise MalformedInputError(
                    path, f"line {first_line + k}", f"not an integer in {lines[k]!r}"
                ) from exc
        raise  # pragma: no cover - numpy failed but every token parsed


def read_map(path: str | Path) -> NDArray[np.uint8]:
    """Read a ``.3dmap`` file into a dense occupancy grid.

    Parameters
    ----------
    path : str or Path
        The map file (``voxel X Y Z`` header, then one blocked voxel ``x y z`` per
        line; or ``rev_voxel X Y Z`` followed by free voxels).

    Returns
    -------
    blocked : (X, Y, Z) uint8 ndarray
        1 where the voxel is blocked, 0 where it is free, indexed ``[x, y, z]``.

    Raises
    ------
    MalformedInputError
        Missing or bad header, a line without three integers, or a voxel outside the
        declared dimensions; the message names the file and the line.

    Examples
    --------
    >>> import tempfile, os
    >>> with tempfile.TemporaryDirectory() as d:
    ...     p = os.path.join(d, "tiny.3dmap")
    ...     _ = open(p, "w").write("voxel 2 3 4\\n1 2 3\\n")
    ...     g = read_map(p)
    >>> g.shape, int(g.sum()), int(g[1, 2, 3])
    ((2, 3, 4), 1, 1)
    """
    path = Path(path)
    lines = [ln for ln in _read_lines(path) if ln.strip()]
    if not lines:
        raise MalformedInputError(
            path, None, "empty file, expected a 'voxel X Y Z' header"
        )
    head = lines[0].split()
    if len(head) != 4 or head[0] not in ("voxel", "rev_voxel"):
        raise MalformedInputError(
            path, "line 1", f"expected header 'voxel X Y Z', got {lines[0]!r}"
        )
    try:
        dims = tuple(int(t) for t in head[1:])
    except ValueError as exc:
        raise MalformedInputError(
            path, "line 1", f"dimensions must be integers, got {lines[0]!r}"
        ) from exc
    if min(dims) <= 0:
        raise MalformedInputError(
            path, "line 1", f"dimensions must be positive, got {dims}"
        )
    xyz = _int_rows(path, lines[1:], 2, 3, "x y z")
    bad = np.flatnonzero(((xyz < 0) | (xyz >= np.array(dims))).any(axis=1))
    if bad.size:
        k = int(bad[0])
        raise MalformedInputError(
            path,
            f"line {k + 2}",
            f"voxel {tuple(int(v) for v in xyz[k])} outside the map dimensions {dims}",
        )
    listed = head[0] == "voxel"
    blocked = (
        np.zeros(dims, dtype=np.uint8) if listed else np.ones(dims, dtype=np.uint8)
    )
    blocked[xyz[:, 0], xyz[:, 1], xyz[:, 2]] = 1 if listed else 0
    return blocked


@dataclass(frozen=True)
class Scenarios:
    """The problems of one ``.3dscen`` file.

    Attributes
    ----------
    map_name : str
        The map file named on the second line (e.g. ``"Simple.3dmap"``).
    start, goal : (n, 3) int64 ndarray
        Voxel indices ``(x, y, z)`` of each problem's start and goal.
    length : (n,) float64 ndarray
        The published optimal path length [grid units].
    ratio : (n,) float64 ndarray
        The published ratio of ``length`` to the 3D octile distance.
    """

    map_name: str
    start: NDArray[np.int64]
    goal: NDArray[np.int64]
    length: NDArray[np.float64]
    ratio: NDArray[np.float64]

    def __len__(self) -> int:
        return int(self.length.shape[0])

    def spread(self, limit: int | None) -> Scenarios:
        """Return ``limit`` problems spread evenly over the file (all if ``None``)."""
        n = len(self)
        if limit is None or limit >= n:
            return self
        if limit <= 0:
            raise ValueError(f"limit must be positive, got {limit}")
        idx = np.unique(np.linspace(0, n - 1, limit).round().astype(np.int64))
        return Scenarios(
            self.map_name,
            self.start[idx],
            self.goal[idx],
            self.length[idx],
            self.ratio[idx],
        )


def read_scenarios(path: str | Path) -> Scenarios:
    """Read a ``.3dscen`` (version 1) scenario file.

    Parameters
    ----------
    path : str or Path
        The scenario file.

    Returns
    -------
    Scenarios
        Starts, goals, optimal lengths and ratios, in file order.

    Raises
    ------
    MalformedInputError
        Missing ``version 1`` line or map name, or a problem line without
        ``sx sy sz gx gy gz L R``; the message names the file and the line.

    Examples
    --------
    >>> import tempfile, os
    >>> with tempfile.TemporaryDirectory() as d:
    ...     p = os.path.join(d, "t.3dscen")
    ...     _ = open(p, "w").write("version 1\\nt.3dmap\\n0 0 0 1 1 1 1.73205081 1.000\\n")
    ...     s = read_scenarios(p)
    >>> s.map_name, len(s), s.goal.tolist(), float(s.length[0])
    ('t.3dmap', 1, [[1, 1, 1]], 1.73205081)
    """
    path = Path(path)
    lines = _read_lines(path)
    numbered = [(k + 1, ln) for k, ln in enumerate(lines) if ln.strip()]
    if not numbered or numbered[0][1].split() != ["version", "1"]:
        got = numbered[0][1] if numbered else ""
        raise MalformedInputError(path, "line 1", f"expected 'version 1', got {got!r}")
    if len(numbered) < 2 or len(numbered[1][1].split()) != 1:
        got = numbered[1][1] if len(numbered) > 1 else ""
        raise MalformedInputError(
            path, "line 2", f"expected the map file name, got {got!r}"
        )
    map_name = numbered[1][1].strip()
    body = numbered[2:]
    rows = [ln.split() for _, ln in body]
    for (lineno, ln), row in zip(body, rows, strict=True):
        if len(row) != 8:
            raise MalformedInputError(
                path,
                f"line {lineno}",
                f"expected 8 fields 'sx sy sz gx gy gz length ratio', got {len(row)}: {ln!r}",
            )
    try:
        ints = np.array([r[:6] for r in rows], dtype=np.int64).reshape(-1, 6)
        reals = np.array([r[6:] for r in rows], dtype=np.float64).reshape(-1, 2)
    except ValueError:
        for (lineno, ln), row in zip(body, rows, strict=True):
            try:
                [int(t) for t in row[:6]]
                [float(t) for t in row[6:]]
            except ValueError as exc:
                raise MalformedInputError(
                    path, f"line {lineno}", f"bad number in {ln!r}"
                ) from exc
        raise  # pragma: no cover
    if (ints < 0).any():
        k = int(np.flatnonzero((ints < 0).any(axis=1))[0])
        raise MalformedInputError(
            path, f"line {body[k][0]}", f"negative voxel index in {body[k][1]!r}"
        )
    return Scenarios(
        map_name,
        ints[:, :3].copy(),
        ints[:, 3:].copy(),
        reals[:, 0].copy(),
        reals[:, 1].copy(),
    )
