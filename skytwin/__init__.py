"""SkyTwin: an open low-altitude airspace service.

Everything SkyTwin installs lives under this one import name:

* ``skytwin.airspace``: the twin (readers, frame, rasterization, grid codes, zones);
  pure computation, no gRPC, no storage.
* ``skytwin.planner``: routes, conflicts and deconfliction; pure computation.
* ``skytwin.server``: the gRPC transport, the service core, the store and the command line.
* ``skytwin.fixtures``: the bundled default city, rules, example zones and generators.
* ``skytwin.v1``: the generated protobuf/gRPC stubs of the public API (``proto/``).

In the repository these are the top-level folders ``airspace/``, ``planner/``,
``server/`` and ``fixtures/``; ``pyproject.toml`` maps them into this namespace.
"""

__version__ = "0.1.0"
