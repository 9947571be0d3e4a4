"""The mail package's exceptions; socket and stream errors are translated into these."""

from __future__ import annotations


class MailError(Exception):
    """Base of every error the mail package raises."""


class SmtpFailure(MailError):
    """One mail could not be delivered: at which step, and what the server said."""

    def __init__(self, stage: str, detail: str, code: int | None = None) -> None:
        super().__init__(f"{stage}: {detail}")
        self.stage = stage
        self.detail = detail
        self.code = code
