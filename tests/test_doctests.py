"""Runnable docstring examples (STYLE: shapely/pyproj doctests) of the pure packages.

They are collected through the installed ``skytwin`` namespace, module by module, so
that pytest never imports ``airspace/`` or ``planner/`` a second time under their
bare folder names.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import skytwin.airspace
import skytwin.fixtures
import skytwin.live
import skytwin.planner


def _modules():
    names = []
    for pkg in (skytwin.airspace, skytwin.planner, skytwin.fixtures, skytwin.live):
        names.append(pkg.__name__)
        for info in pkgutil.walk_packages(pkg.__path__, prefix=pkg.__name__ + "."):
            names.append(info.name)
    return sorted(names)


MODULES = _modules()


def test_modules_are_found():
    assert "skytwin.airspace.gridcode" in MODULES
    assert "skytwin.planner.search" in MODULES
    assert "skytwin.live.tactical" in MODULES


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    for test in finder.find(module, name):
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} docstring example(s) failed in {name}"
