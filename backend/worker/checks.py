"""The check of a job request when it arrives, so that a bad one is answered at once (with
``bad_message``), not when its turn comes (`protocol.validate`, the one check the add-on
runs too); and the request's adjustments as the backend's."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING

from .protocol import NUMBERS, ProtocolError, Request, validate

if TYPE_CHECKING:
    from backend.normalize import Adjustments

__all__ = ["NUMBERS", "check_request", "to_adjustments"]


def check_request(request: Request) -> None:
    """Raise `ProtocolError` for a ``run`` or ``preview`` whose fields are well-typed but make
    no sense (the message names the field, the value and what is allowed)."""
    validate(request)


def to_adjustments(request: Request) -> Adjustments:
    """The request's ``adjust`` as `Adjustments`; `ProtocolError` when the values are unusable."""
    from backend.normalize import Adjustments

    try:
        return Adjustments(**asdict(request.adjust))
    except ValueError as exc:
        raise ProtocolError(f"{request.type}.adjust: {exc}") from None
