"""Live airspace operations, pure computation (no gRPC, no storage).

Modules: :mod:`.lifecycle` (states and who may change them), :mod:`.telemetry`
(report validation), :mod:`.conformance` (4D conformance and F3548-style timers, one
vectorised sweep for every flight), :mod:`.tactical` (predicted losses of separation,
numba spatial hash), :mod:`.resolve` (who gives way and the re-planned advisory),
:mod:`.errors`. The server (``skytwin.server``) feeds them telemetry and persists
their events.
"""
