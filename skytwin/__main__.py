"""``python -m skytwin ...`` is ``skytwin ...``."""

import os
import sys

try:
    from skytwin.server.cli import main
except KeyboardInterrupt:       # Ctrl-C while importing: as quiet as any other Ctrl-C
    # os._exit, not sys.exit: an import cut midway (grpc, numba) may have started threads
    # that a normal interpreter shutdown would wait for
    os._exit(130)

sys.exit(main())
