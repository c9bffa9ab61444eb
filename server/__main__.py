"""``python -m skytwin.server ...`` is ``skytwin ...`` (e.g. ``python -m skytwin.server serve``)."""

import sys

try:
    from skytwin.server.cli import main
except KeyboardInterrupt:       # Ctrl-C while importing: as quiet as any other Ctrl-C
    sys.exit(130)

sys.exit(main())
