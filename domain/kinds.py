"""The four output types: every job is of one, and each has its own table."""

from __future__ import annotations

from enum import StrEnum


class OutputType(StrEnum):
    VIDEO = "video"
    IMAGE = "image"
    TEXT = "text"
    AUDIO = "audio"

    @property
    def table(self) -> str:
        return f"{self.value}_jobs"
