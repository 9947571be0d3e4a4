"""Which notify FIFOs vrrpd and checkd open, and which reader scripts each starts (pure).

Both sides are decided here, in one place, because checkd's choice of readers depends on
vrrpd's: a FIFO path gets one reader per daemon (docs/operations.md, "Notify FIFOs").

* vrrpd (:func:`vrrp_fifo`): ``vrrp_notify_fifo`` with ``vrrp_notify_fifo_script``, else
  ``notify_fifo`` with ``notify_fifo_script``.
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


def vrrp_fifo(config: Config) -> FifoSetup | None:
    """The notify FIFO vrrpd opens: ``vrrp_notify_fifo`` wins over ``notify_fifo``, each with
    its own keyword's reader script."""
    g = config.global_defs
    if g.vrrp_notify_fifo is not None:
        return _setup(config, "vrrp_notify_fifo", g.vrrp_notify_fifo, g.vrrp_notify_fifo_script)
    if g.notify_fifo is not None:
        return _setup(config, "notify_fifo", g.notify_fifo, g.notify_fifo_script)
    return None


def checker_fifos(config: Config, *, with_vrrpd: bool = True) -> tuple[FifoSetup, ...]:
    """The notify FIFOs checkd opens, global first (keepalived's order), with their readers.

    ``with_vrrpd`` False: no vrrpd runs beside this checkd (``-C``), so no reader is left to it.
    """
    if not config.virtual_servers:
        return ()
    g = config.global_defs
    vrrp = vrrp_fifo(config) if with_vrrpd else None
    vrrpd_readers = {vrrp.path} if vrrp is not None and vrrp.reader is not None else set()
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
