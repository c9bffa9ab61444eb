"""``python -m server ...`` is ``skytwin ...`` (e.g. ``python -m server serve``)."""

import sys

from server.cli import main

sys.exit(main())
