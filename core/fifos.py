"""Which notify FIFOs vrrpd and checkd open, and which reader scripts each starts (pure).

Both sides are decided here, in one place, because checkd's choice of readers depends on
vrrpd's: a FIFO path gets one reader per daemon (docs/operations.md, "Notify FIFOs").

* vrrpd (:func:`vrrp_fifos`), as keepalived's VRRP process: ``notify_fifo`` and
  ``vrrp_notify_fifo``, every INSTANCE/GROUP line to each, each with its own reader script;
  a ``vrrp_notify_fifo`` with the global FIFO's path is dropped, script and all.
* checkd (:func:`checker_fifos`), as keepalived's checker process (check_daemon.c,
  global_data.c): only with virtual servers (keepalived runs no checker process without
  one), the global ``notify_fifo`` and ``lvs_notify_fifo``, every RS/VS line to each; an LVS
  FIFO with the global FIFO's path is dropped, script and all (the lines would be there
  twice). A reader is started unless vrrpd starts one on the same path: this keeps
  keepalived's rule that an LVS FIFO shared with the VRRP FIFO, both with scripts, runs only
  the VRRP script, and starts ``notify_fifo_script`` once where keepalived starts it in each
  of its processes (two readers taking turns at one FIFO's lines). Without vrrpd in the group
  (``pykeepalived -C``) checkd starts every reader of its FIFOs.

The result is plain :class:`scripts.FifoSetup` values, compared across reloads: an unchanged
FIFO stays open with its reader.
"""

from __future__ import annotations

from core.model import Config, Script
from core.scriptcheck import script_spec
from scripts import FifoSetup


def vrrp_fifos(config: Config) -> tuple[FifoSetup, ...]:
    """The notify FIFOs vrrpd opens, global first, as keepalived's VRRP process (vrrp.c,
    global_data.c): ``notify_fifo`` and ``vrrp_notify_fifo``, every line to each, each with
    its own keyword's reader script; a ``vrrp_notify_fifo`` at ``notify_fifo``'s path is
    dropped, script and all (the lines would be there twice)."""
    g = config.global_defs
    out: list[FifoSetup] = []
    if g.notify_fifo is not None:
        out.append(_setup(config, "notify_fifo", g.notify_fifo, g.notify_fifo_script))
    vrrp = g.vrrp_notify_fifo
    if vrrp is not None and (g.notify_fifo is None or g.notify_fifo.command != vrrp.command):
        out.append(_setup(config, "vrrp_notify_fifo", vrrp, g.vrrp_notify_fifo_script))
    return tuple(out)


def checker_fifos(config: Config, *, with_vrrpd: bool = True) -> tuple[FifoSetup, ...]:
    """The notify FIFOs checkd opens, global first (keepalived's order), with their readers.

    ``with_vrrpd`` False: no vrrpd runs beside this checkd (``-C``), so no reader is left to it.
    """
    if not config.virtual_servers:
        return ()
    g = config.global_defs
    vrrp = vrrp_fifos(config) if with_vrrpd else ()
    vrrpd_readers = {s.path for s in vrrp if s.reader is not None}
    out: list[FifoSetup] = []
    for keyword, fifo, reader in (
        ("notify_fifo", g.notify_fifo, g.notify_fifo_script),
        ("lvs_notify_fifo", g.lvs_notify_fifo, g.lvs_notify_fifo_script),
    ):
        if fifo is None or any(s.path == fifo.command for s in out):
            continue
        own_reader = reader if fifo.command not in vrrpd_readers else None
        out.append(_setup(config, keyword, fifo, own_reader))
    return tuple(out)


def _setup(config: Config, keyword: str, fifo: Script, reader: Script | None) -> FifoSetup:
    # The FIFO's owner is chosen as a script's user is (its own ``user [group]``, then
    # ``script_user``, then keepalived_script), as keepalived does (global_parser.c).
    owner = script_spec(config, keyword, fifo)
    return FifoSetup(
        keyword=keyword,
        path=fifo.command,
        user=owner.user,
        group=owner.group,
        user_source=owner.user_source,
        reader=script_spec(config, f"{keyword}_script", reader) if reader is not None else None,
    )
