"""``python -m bus --runtime-dir DIR``: run the bus broker alone."""

import sys

from bus.broker import serve
from bus.component import run_component

sys.exit(run_component("bus", serve, description="pykeepalived bus broker (XSUB/XPUB)"))
