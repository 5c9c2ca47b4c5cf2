"""The check of a job request when it arrives, so that a bad one is answered at once (with
``bad_message``), not when its turn comes (`protocol.validate`, the one check the add-on and
the command line run too)."""

from __future__ import annotations

from .protocol import NUMBERS, Request, validate

__all__ = ["NUMBERS", "check_request"]


def check_request(request: Request) -> None:
    """Raise `ProtocolError` for a ``run`` or ``preview`` whose fields are well-typed but make
    no sense (the message names the field, the value and what is allowed)."""
    validate(request)
