"""The watchdog: pykeepalived's parent process, which starts and supervises the components."""

from watchdog.backoff import Backoff
from watchdog.children import START_ORDER, ChildSpec
from watchdog.cli import main
from watchdog.supervisor import Supervisor

__all__ = ["START_ORDER", "Backoff", "ChildSpec", "Supervisor", "main"]
