"""``python -m vrrpd --runtime-dir DIR``."""

import sys

from bus import run_component
from vrrpd.process import add_arguments, serve

sys.exit(run_component("vrrpd", serve, add_arguments=add_arguments))
