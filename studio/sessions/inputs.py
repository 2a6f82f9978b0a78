"""createSession's input, checked field by field before anything is stored.

Every bad field is reported on its own, with a path relative to the input (e.g.
["styleKeywords", "2"]) and one of these codes:

  REQUIRED       userProductPrompt missing or blank
  OUT_OF_RANGE   numImagesRequested outside 1..12, clipDurationSeconds outside 1..10,
                 consistencySeed outside 0..2^31-1
  TOO_LONG       a text longer than the pipeline's workflows (or the table) take
  INVALID_FORMAT textColor not #RRGGBB; a blank style keyword
  INVALID_CHOICE textFont not one of compose-ad's fonts; an unknown productCategory
  INVALID_FILE   musicUrl not an uploaded audio file
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from comfygraph.comfy.templates import SEED_MAX
from comfygraph.studio.submit import Problem

CATEGORIES = ("footwear", "accessories", "electronics", "beauty", "apparel", "home", "other")
MAX_PROMPT = 2000  # product-image's and image-to-clip's prompt limits
MAX_KEYWORDS = 20
MAX_KEYWORDS_TEXT = 500  # product-image's style_keywords, joined with ", "
MAX_OVERLAY_TEXT = 100  # compose-ad's product_name / call_to_action, sessions' varchar(100)
MAX_GENRE = 50
IMAGES_RANGE = (1, 12)
CLIP_SECONDS_RANGE = (1.0, 10.0)
DEFAULT_IMAGES = 6
DEFAULT_CLIP_SECONDS = 3.0
_COLOR = re.compile(r"#[0-9A-Fa-f]{6}")


@dataclass(frozen=True)
class SessionSpec:
    """CreateSessionInput as plain data (None for a field left out)."""

    user_product_prompt: str
    user_video_prompt: str | None = None
    product_category: str | None = None
    num_images_requested: int | None = None
    clip_duration_seconds: float | None = None
    consistency_seed: int | None = None
    style_keywords: Sequence[str] | None = None
    product_name: str | None = None
    call_to_action: str | None = None
    text_color: str | None = None
    text_font: str | None = None
    background_music_enabled: bool | None = None
    music_genre: str | None = None
    music_url: str | None = None  # an uploaded AUDIO file: the final video's music


AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg", ".m4a", ".aac", ".opus")


def session_columns(
    spec: SessionSpec,
    *,
    fonts: Sequence[str],
    rng: random.Random | None = None,
    is_stored_file: Callable[[str], bool] | None = None,
) -> tuple[dict[str, Any], list[Problem]]:
    """The sessions columns for `spec` (defaults filled in, a random consistency seed when
    none is given), and one Problem per bad field."""
    problems: list[Problem] = []

    def bad(code: str, message: str, *path: str) -> None:
        problems.append(Problem(code, message, path))

    def text(value: str | None, name: str, limit: int) -> str | None:
        cleaned = (value or "").strip()
        if len(cleaned) > limit:
            bad("TOO_LONG", f"{name} takes at most {limit} characters", name)
        return cleaned or None

    prompt = text(spec.user_product_prompt, "userProductPrompt", MAX_PROMPT)
    if prompt is None:
        bad("REQUIRED", "describe the product: userProductPrompt must not be blank",
            "userProductPrompt")  # fmt: skip
    images = DEFAULT_IMAGES if spec.num_images_requested is None else spec.num_images_requested
    if not IMAGES_RANGE[0] <= images <= IMAGES_RANGE[1]:
        bad("OUT_OF_RANGE", "numImagesRequested must be within 1..12", "numImagesRequested")
    seconds = (
        DEFAULT_CLIP_SECONDS if spec.clip_duration_seconds is None else spec.clip_duration_seconds
    )
    if not CLIP_SECONDS_RANGE[0] <= seconds <= CLIP_SECONDS_RANGE[1]:
        bad("OUT_OF_RANGE", "clipDurationSeconds must be within 1..10", "clipDurationSeconds")
    seed = spec.consistency_seed
    if seed is None:
        seed = (rng or random.SystemRandom()).randint(0, SEED_MAX)
    elif not 0 <= seed <= SEED_MAX:
        bad("OUT_OF_RANGE", f"consistencySeed must be within 0..{SEED_MAX}", "consistencySeed")
    if spec.product_category is not None and spec.product_category not in CATEGORIES:
        bad("INVALID_CHOICE", f"productCategory must be one of {', '.join(CATEGORIES)}",
            "productCategory")  # fmt: skip
    keywords = [k.strip() for k in spec.style_keywords or []]
    for index, keyword in enumerate(keywords):
        if not keyword:
            bad("INVALID_FORMAT", "a style keyword must not be blank", "styleKeywords", str(index))
    if len(keywords) > MAX_KEYWORDS:
        bad("TOO_LONG", f"at most {MAX_KEYWORDS} style keywords", "styleKeywords")
    elif len(", ".join(keywords)) > MAX_KEYWORDS_TEXT:
        bad("TOO_LONG", f"style keywords take at most {MAX_KEYWORDS_TEXT} characters in all",
            "styleKeywords")  # fmt: skip
    color = (spec.text_color or "").strip() or None
    if color is not None and not _COLOR.fullmatch(color):
        bad("INVALID_FORMAT", "textColor must look like #RRGGBB", "textColor")
    font = (spec.text_font or "").strip() or None
    if font is not None and font not in fonts:
        bad("INVALID_CHOICE", f"textFont must be one of {', '.join(fonts)}", "textFont")
    music = (spec.music_url or "").strip() or None
    if music is not None and not (
        music.lower().endswith(AUDIO_SUFFIXES) and (is_stored_file is None or is_stored_file(music))
    ):
        bad("INVALID_FILE", "musicUrl must be the URL of an uploaded audio file", "musicUrl")
    columns: dict[str, Any] = {
        "user_product_prompt": prompt,
        "user_video_prompt": text(spec.user_video_prompt, "userVideoPrompt", MAX_PROMPT),
        "product_category": spec.product_category,
        "num_images_requested": images,
        "clip_duration_seconds": Decimal(str(round(float(seconds), 2))),
        "consistency_seed": seed,
        "style_keywords": keywords,
        "product_name": text(spec.product_name, "productName", MAX_OVERLAY_TEXT),
        "call_to_action": text(spec.call_to_action, "callToAction", MAX_OVERLAY_TEXT),
        "text_color": color,
        "text_font": font,
        "background_music_enabled": bool(spec.background_music_enabled),
        "music_genre": text(spec.music_genre, "musicGenre", MAX_GENRE),
        "music_url": music,
    }
    return columns, problems
