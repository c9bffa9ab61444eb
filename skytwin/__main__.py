"""``python -m skytwin ...`` is ``skytwin ...``."""

import sys

try:
    from skytwin.server.cli import main
except KeyboardInterrupt:       # Ctrl-C while importing: as quiet as any other Ctrl-C
    sys.exit(130)

sys.exit(main())
