"""``python -m core -f FILE --runtime-dir DIR``: load and publish the configuration."""

import sys

from bus import run_component
from core.process import add_arguments, serve

sys.exit(
    run_component(
        "core", serve, description="pykeepalived configuration owner", add_arguments=add_arguments
    )
)
