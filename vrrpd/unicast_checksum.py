"""keepalived's ``old_unicast_checksum``: which VRRPv3/IPv4 checksum form an instance sends.

keepalived <= 1.3.6 put 224.0.0.18 in the pseudo-header even of adverts it sent unicast
(``ChecksumForm.OLD_UNICAST``). keepalived since then sends the real destination, and by default
(``auto``) copes with an old peer: a unicast advert whose checksum only fits the old form is
accepted, and the instance switches to sending the old form itself, once, with a log line
("Setting unicast VRRPv3 checksum to old version"). ``never`` neither accepts nor switches;
``always`` (the bare keyword) sends the old form from the start.

Pure: the runner asks :attr:`tx_form` when it prepares adverts, passes :attr:`rx_forms` to
validation, and calls :meth:`observe` with each accepted advert's form (only for datagrams it
actually validates, so no cost is added to the repeated-advert path).
"""

from __future__ import annotations

from vrrpd.packet import DEFAULT_RX_FORMS, ChecksumForm

__all__ = ["MODES", "UnicastChecksum"]

MODES = ("auto", "always", "never")


class UnicastChecksum:
    """The checksum forms of one instance, and the switch to the old unicast form."""

    __slots__ = ("as_v2", "mode", "switched", "unicast")

    def __init__(self, mode: str, *, unicast: bool, as_v2: bool = False) -> None:
        if mode not in MODES:
            raise ValueError(f"old_unicast_checksum mode {mode!r} is not one of {MODES}")
        self.mode = mode
        self.unicast = unicast
        self.as_v2 = as_v2
        self.switched = False  # auto mode has seen an old-form peer

    @property
    def old(self) -> bool:
        """Does this instance send the old unicast form?"""
        return self.unicast and (self.mode == "always" or self.switched)

    @property
    def tx_form(self) -> ChecksumForm:
        # v3_checksum_as_v2 (message only, no pseudo-header) wins: it names no destination.
        if self.as_v2:
            return ChecksumForm.MESSAGE
        return ChecksumForm.OLD_UNICAST if self.old else ChecksumForm.PSEUDO

    @property
    def rx_forms(self) -> frozenset[ChecksumForm]:
        if not self.unicast or self.mode == "never":
            return DEFAULT_RX_FORMS
        return DEFAULT_RX_FORMS | {ChecksumForm.OLD_UNICAST}

    def observe(self, form: ChecksumForm | None) -> bool:
        """An accepted advert had checksum ``form``: True when this switches us to the old form.

        The old form is only ever *matched* when the current one failed (validation tries it
        last), so one such advert is keepalived's "checksum failure, retry with the multicast
        destination, and it matched".
        """
        if form is not ChecksumForm.OLD_UNICAST or self.mode != "auto" or self.old:
            return False
        if not self.unicast or self.as_v2:
            return False
        self.switched = True
        return True
