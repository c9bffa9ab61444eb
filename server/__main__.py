"""``python -m skytwin.server ...`` is ``skytwin ...`` (e.g. ``python -m skytwin.server serve``)."""

import sys

from skytwin.server.cli import main

sys.exit(main())
