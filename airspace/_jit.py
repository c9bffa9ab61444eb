"""Numba options, chosen once for every kernel of SkyTwin.

``cache=True`` keeps compiled kernels on disk (a kernel compiles in ~0.2 s, loads in
~0.1 s); ``nogil=True`` lets the server run several kernels in threads. ``fastmath`` is
off: reassociation can break the admissibility of A* heuristics and exact cost ties.
``tests/test_jit_options.py`` fails on any ``@njit`` in airspace/ or planner/ (planner imports this module too) that does
not use ``**JIT``.
"""

JIT = dict(cache=True, nogil=True)

__all__ = ["JIT"]
