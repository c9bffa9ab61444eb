"""``python -m skytwin ...`` is ``skytwin ...``."""

import sys

from skytwin.server.cli import main

sys.exit(main())
