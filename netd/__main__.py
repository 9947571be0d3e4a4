"""``python -m netd --runtime-dir DIR``."""

import sys

from bus import run_component
from netd.process import add_arguments, serve

sys.exit(run_component("netd", serve, add_arguments=add_arguments))
