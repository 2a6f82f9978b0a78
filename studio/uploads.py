"""Storing an uploaded input file (uploadFile): its type sniffed from its bytes, its size
bounded while it is read, its name made safe, its key one nobody else can pick.

    stored = await store_upload(storage, upload, owner=user_id, limit=settings.max_upload_bytes)

The client's content type and file extension are never trusted: the first bytes decide
(`sniff`), and the stored name gets the extension of what was found. Keys look like
`uploads/{owner}/{random}/{name}`, so two uploads never collide and a name such as
`../../etc/passwd` is only a name (`passwd.png`). At most `limit + 1` bytes are read;
on any refusal nothing is left in storage.
"""

from __future__ import annotations

import contextlib
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

from starlette.datastructures import UploadFile

from comfygraph.storage import LocalStorage, StoredFile, safe_name

# Codes of UploadRejected (userErrors[].code of uploadFile).
NOT_A_FILE = "NOT_A_FILE"
EMPTY_FILE = "EMPTY_FILE"
FILE_TOO_LARGE = "FILE_TOO_LARGE"
UNSUPPORTED_FILE_TYPE = "UNSUPPORTED_FILE_TYPE"

SNIFF_BYTES = 64 * 1024  # read before deciding the type; also covers a small ID3 tag
CHUNK_BYTES = 256 * 1024


@dataclass(frozen=True)
class FileType:
    mime: str
    extension: str


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

# ISO base media brands that are not MP4/MOV video: still images (HEIF, AVIF) and
# audio-only files (M4A and friends).
_NOT_VIDEO_BRANDS = frozenset(
    {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs", b"mif1",
     b"msf1", b"avif", b"avis", b"M4A ", b"M4B ", b"M4P ", b"F4A ", b"F4B "}
)  # fmt: skip
_QUICKTIME_ATOMS = (b"moov", b"mdat", b"wide")
# EBML DocType element (0x4282), a size of 4 in any of its encodings, then "webm".
_WEBM_DOCTYPE = re.compile(rb"\x42\x82(?:\x84|\x40\x04|\x20\x00\x04|\x10\x00\x00\x04)webm")
# MPEG audio Layer III: kbit/s by [version is MPEG-1][bitrate index], Hz by version.
_MP3_BITRATES = {
    True: (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    False: (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
_MP3_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}


class UploadRejected(Exception):
    """An upload refused for what it is (a userError); nothing of it was stored."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class StoredUpload:
    url: str
    name: str
    content_type: str
    size: int


def sniff(head: bytes) -> FileType | None:
    """The type of a file from its first bytes (SNIFF_BYTES of them, or all of a smaller
    file), or None when it is none of the SUPPORTED ones."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    if head.startswith((b"GIF87a", b"GIF89a")):
        return GIF
    if head[:4] == b"RIFF" and head[8:12] in (b"WEBP", b"WAVE"):
        return WEBP if head[8:12] == b"WEBP" else WAV
    if head.startswith(b"fLaC"):
        return FLAC
    if head.startswith(b"OggS"):
        return OGG
    if head.startswith(b"\x1a\x45\xdf\xa3"):  # EBML: WebM, or Matroska (not supported)
        return WEBM if _WEBM_DOCTYPE.search(head[:64]) else None
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand == b"qt  ":
            return MOV
        return None if brand in _NOT_VIDEO_BRANDS or len(brand) < 4 else MP4
    if head[4:8] in _QUICKTIME_ATOMS and int.from_bytes(head[:4], "big") >= 8:
        return MOV
    return _mp3(head)


def _mp3(head: bytes) -> FileType | None:
    """MP3: an ID3v2 tag, then MPEG audio frames (or frames from the first byte on)."""
    start = 0
    if head.startswith(b"ID3") and len(head) >= 10:
        size = sum((b & 0x7F) << (7 * (3 - i)) for i, b in enumerate(head[6:10]))
        start = 10 + size + (10 if head[5] & 0x10 else 0)
        if start + 4 > len(head):
            return MP3  # a tag larger than what was read: ID3v2 is MP3's own header
        if head[start:].startswith(b"fLaC"):
            return FLAC
    length = _frame_length(head, start)
    if length is None:
        return None
    # Two frame headers in a row, where the first one's length says: not chance bytes.
    after = start + length
    if after + 4 <= len(head) and _frame_length(head, after) is None:
        return None
    return MP3


def _frame_length(data: bytes, at: int) -> int | None:
    """The length of the MPEG audio Layer III frame whose header is at `at`, or None."""
    if at + 4 > len(data) or data[at] != 0xFF or data[at + 1] & 0xE0 != 0xE0:
        return None
    version = (data[at + 1] >> 3) & 0x03  # 3: MPEG-1, 2: MPEG-2, 0: MPEG-2.5, 1: reserved
    layer = (data[at + 1] >> 1) & 0x03  # 1: Layer III
    bitrate_index = data[at + 2] >> 4
    rate_index = (data[at + 2] >> 2) & 0x03
    if version == 1 or layer != 1 or bitrate_index in (0, 15) or rate_index == 3:
        return None
    bitrate = _MP3_BITRATES[version == 3][bitrate_index] * 1000
    rate = _MP3_RATES[version][rate_index]
    padding = (data[at + 2] >> 1) & 0x01
    return (144 if version == 3 else 72) * bitrate // rate + padding


def stored_name(filename: str | None, kind: FileType) -> str:
    """A safe file name ending in the sniffed type's extension: `cat.txt` -> `cat.png`."""
    stem = safe_name(filename or "", default="upload")
    stem = stem.rsplit(".", 1)[0] if "." in stem else stem
    return f"{stem or 'upload'}.{kind.extension}"


def _too_large(limit: int) -> UploadRejected:
    return UploadRejected(FILE_TOO_LARGE, f"the file is larger than the limit of {limit} bytes")


async def _read_head(upload: UploadFile, size: int) -> bytes:
    head = b""
    while len(head) < size:
        chunk = await upload.read(size - len(head))
        if not chunk:
            break
        head += chunk
    return head


async def store_upload(
    storage: LocalStorage, value: object, *, owner: uuid.UUID, limit: int
) -> StoredUpload:
    """Sniff, bound and store `value` (a file part of a multipart request); raises
    UploadRejected, and then nothing is stored."""
    if not isinstance(value, UploadFile):  # a plain JSON value where a file belongs
        raise UploadRejected(NOT_A_FILE, "send the file as a multipart request part")
    upload: UploadFile = value
    head = await _read_head(upload, min(SNIFF_BYTES, limit + 1))
    if not head:
        raise UploadRejected(EMPTY_FILE, "the file is empty")
    if len(head) > limit:
        raise _too_large(limit)
    kind = sniff(head)
    if kind is None:
        names = ", ".join(k.extension.upper() for k in SUPPORTED)
        raise UploadRejected(UNSUPPORTED_FILE_TYPE, f"unsupported file type (expected {names})")

    async def chunks() -> AsyncIterator[bytes]:
        yield head
        total = len(head)
        while chunk := await upload.read(min(CHUNK_BYTES, limit + 1 - total)):
            total += len(chunk)
            if total > limit:
                raise _too_large(limit)
            yield chunk

    key = f"uploads/{owner}/{uuid.uuid4().hex}/{stored_name(upload.filename, kind)}"
    try:
        stored: StoredFile = await storage.put(key, chunks())
    except UploadRejected:
        # put removed its partial file; the folder it made for this key is ours alone.
        with contextlib.suppress(OSError):
            storage.path_for(key).parent.rmdir()
        raise
    return StoredUpload(stored.url, stored.key.rsplit("/", 1)[-1], kind.mime, stored.size)
