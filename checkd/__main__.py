"""``python -m checkd --runtime-dir DIR``."""

import sys

from bus import run_component
from checkd.process import add_arguments, serve

sys.exit(run_component("checkd", serve, add_arguments=add_arguments))
