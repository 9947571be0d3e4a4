import sys

from ctl.cli import main

sys.exit(main())
