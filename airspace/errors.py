"""Typed errors of the airspace twin.

Design
------
One base class, :class:`AirspaceError`, for everything this package raises on purpose.
Each leaf class also inherits the matching built-in (``ValueError``, ``KeyError``,
``LookupError``...) so that callers who only know the built-ins still catch them, as
h3-py does with ``H3ValueError(H3BaseException, ValueError)``.

Errors about input files carry the file (``path``) and the object inside it
(``object_id``) so that a person can find and fix the offending record; when they wrap a
lower-level failure (``json.JSONDecodeError``, ``lxml.etree.XMLSyntaxError``,
``pyproj.exceptions.CRSError``) they keep its message and chain it with ``from``.
The gRPC layer maps these classes to status codes in one place (``server/errors.py``).
"""

from __future__ import annotations

__all__ = [
    "AirspaceError",
    "CRSMissingError",
    "EmptyModelError",
    "GridCodeError",
    "MalformedInputError",
    "OutsideTwinError",
    "ZoneError",
]


class AirspaceError(Exception):
    """Base class of every error raised on purpose by :mod:`airspace`."""


class MalformedInputError(AirspaceError, ValueError):
    """A file (or one object in it) cannot be read.

    Parameters
    ----------
    path : str or None
        The file that holds the bad data.
    object_id : str or None
        The id of the offending object (CityObject id, gml:id, feature id,
        JSON pointer) or ``None`` when the whole file is bad.
    reason : str
        What is wrong, phrased so that the reader knows what to fix.
    """

    def __init__(self, path: str | None, object_id: str | None, reason: str):
        self.path = None if path is None else str(path)
        self.object_id = object_id
        self.reason = reason
        where = self.path or "<input>"
        if object_id is not None:
            where = f"{where} [{object_id}]"
        super().__init__(f"{where}: {reason}")


class CRSMissingError(MalformedInputError):
    """The file names no coordinate reference system, or one pyproj does not know."""


class EmptyModelError(MalformedInputError):
    """The file holds no usable building at all."""


class OutsideTwinError(AirspaceError, ValueError):
    """A coordinate lies outside the twin's extent (or outside any sane range)."""


class GridCodeError(AirspaceError, ValueError):
    """A grid code string or integer is malformed or out of range."""


class ZoneError(AirspaceError, ValueError):
    """A no-fly volume is malformed; the message names the offending field."""
