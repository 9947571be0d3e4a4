"""``python -m vrrpd --runtime-dir DIR``."""

import sys

from bus import run_component
from vrrpd.process import serve

sys.exit(run_component("vrrpd", serve))
