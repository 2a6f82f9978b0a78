"""What a file is, from its bytes: puremagic's signature database (a maintained,
pure-Python table of magic numbers; no libmagic to install) decides, and this module only
narrows its candidates to the types the studio accepts.

    kind = sniff(head)        # FileType or None
    guard = MarkupGuard()     # feed it every chunk: refuses PNG/GIF/ID3 + HTML polyglots

Markup inside an image or a sound is how a polyglot turns into a page once a browser
sniffs it; `/files` sends nosniff as well, but such files are refused at upload.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import puremagic


@dataclass(frozen=True)
class FileType:
    mime: str
    extension: str

    @property
    def inline(self) -> bool:
        """Shown in the browser (Content-Disposition: inline): media types only."""
        return self.mime.split("/", 1)[0] in ("image", "video", "audio")


PNG = FileType("image/png", "png")
JPEG = FileType("image/jpeg", "jpg")
WEBP = FileType("image/webp", "webp")  # static or animated: the same MIME type
GIF = FileType("image/gif", "gif")
WAV = FileType("audio/wav", "wav")
FLAC = FileType("audio/flac", "flac")
MP3 = FileType("audio/mpeg", "mp3")
OGG = FileType("audio/ogg", "ogg")
MP4 = FileType("video/mp4", "mp4")
MOV = FileType("video/quicktime", "mov")
WEBM = FileType("video/webm", "webm")
SUPPORTED = (PNG, JPEG, WEBP, GIF, WAV, FLAC, MP3, OGG, MP4, MOV, WEBM)

# puremagic's extensions -> ours, in the order a tie is settled (MOV's `qt  ` brand also
# matches MP4's generic ftyp signature; the more specific one wins).
_BY_EXTENSION: dict[str, FileType] = {
    ".mov": MOV, ".qt": MOV, ".png": PNG, ".jpg": JPEG, ".jpeg": JPEG, ".jfif": JPEG,
    ".jpe": JPEG, ".webp": WEBP, ".gif": GIF, ".wav": WAV, ".flac": FLAC, ".mp3": MP3,
    ".mpga": MP3, ".ogg": OGG, ".oga": OGG, ".mp4": MP4, ".webm": WEBM,
}  # fmt: skip
# Candidates that, when puremagic also finds them, mean "not what it looks like": ISO
# media that is a still image or audio only, Matroska that is not WebM.
_REFUSED_EXTENSIONS = frozenset({".heic", ".heif", ".avif", ".m4a", ".m4b", ".m4p", ".mkv"})
_REFUSED_MIMES = frozenset({"image/heif", "image/heic", "image/avif", "audio/mp4"})


def sniff(head: bytes) -> FileType | None:
    """The type of a file from its first bytes, or None when it is none of SUPPORTED."""
    try:
        candidates = puremagic.magic_string(head)
    except (puremagic.PureError, ValueError):
        return None
    mapped = [c for c in candidates if c.extension in _BY_EXTENSION]
    if not mapped:
        return None
    # Only the most confident matches count: a WAV also matches RIFF signatures of
    # lower confidence (WebP's among them).
    top = max(c.confidence for c in mapped)
    if any((c.extension in _REFUSED_EXTENSIONS or c.mime_type in _REFUSED_MIMES)
           and c.confidence >= top for c in candidates):  # fmt: skip
        return None
    found = {_BY_EXTENSION[c.extension] for c in mapped if c.confidence >= top}
    best = next(kind for kind in _BY_EXTENSION.values() if kind in found)
    if best is MP3 and not head.startswith(b"ID3") and not _mpeg_frames(head):
        return None  # a lone 0xFFFB pair is chance bytes, not an MPEG stream
    return best


def _mpeg_frames(data: bytes) -> bool:
    """Two MPEG audio frame headers in a row, the second where the first one's length
    says (puremagic matches one 2-byte sync word, which random data has often)."""
    length = _frame_length(data, 0)
    if length is None:
        return False
    return len(data) < length + 4 or _frame_length(data, length) is not None


_KBITS = {True: (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
          False: (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160)}  # fmt: skip
_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}


def _frame_length(data: bytes, at: int) -> int | None:
    if at + 4 > len(data) or data[at] != 0xFF or data[at + 1] & 0xE0 != 0xE0:
        return None
    version, layer = (data[at + 1] >> 3) & 3, (data[at + 1] >> 1) & 3
    bitrate_index, rate_index = data[at + 2] >> 4, (data[at + 2] >> 2) & 3
    if version == 1 or layer != 1 or bitrate_index in (0, 15) or rate_index == 3:
        return None
    bitrate = _KBITS[version == 3][bitrate_index] * 1000
    padding = (data[at + 2] >> 1) & 1
    return (144 if version == 3 else 72) * bitrate // _RATES[version][rate_index] + padding


# Markup that makes a browser (or a careless proxy) treat bytes as a page. Scanned in the
# whole file: each marker is long and specific enough that compressed media data does
# not produce it by chance (`<script` is 1 in 2^49 per position, case folded).
_MARKUP = re.compile(
    rb"<(?:script|html|body|iframe|object|embed|!doctype|\?php|svg[\s>/])"
    rb"|javascript:|<[a-z]+[^>]{0,200}\bon(?:load|error|click|mouseover)\s*=",
    re.IGNORECASE,
)
_OVERLAP = 256  # a marker split across two chunks is still found


class MarkupGuard:
    """Feed every chunk of a file; `found` once HTML or script appeared anywhere."""

    def __init__(self) -> None:
        self._tail = b""
        self.found = False

    def feed(self, chunk: bytes) -> bool:
        if not self.found:
            window = self._tail + chunk
            self.found = _MARKUP.search(window) is not None
            self._tail = window[-_OVERLAP:]
        return self.found


def has_markup(data: bytes) -> bool:
    return MarkupGuard().feed(data)
