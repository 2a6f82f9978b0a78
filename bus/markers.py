"""Markers a subscriber receives between messages."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Reconnected:
    """The bus lost its broker connection and is listening again.

    Events published during the gap may be lost. Everything published after this marker
    is delivered after it, so re-read the current state now and send it to the client.
    ``generation`` counts the bus's reconnects (1 for the first); ``downtime`` is the
    seconds from noticing the loss to listening again (a silent line is noticed up to
    ping_interval + command_timeout late); ``attempts`` the connection attempts it took.
    """

    generation: int
    downtime: float
    attempts: int
