"""Which decoder a file needs, from its first bytes (never from its name).

libsndfile decodes what it reads exactly: WAV/RF64, AIFF, FLAC, Ogg and the other
formats it knows. FFmpeg (PyAV) decodes the rest: MP3 (libsndfile's length for an MP3 without a
Xing/Info frame is an estimate, and its libmpg123 writes to the process's stderr), MP4/M4A,
Matroska/WebM, ASF/WMA, raw AAC (ADTS), WavPack, Monkey's Audio and CAF (libsndfile refuses
ALAC in CAF and passes a cut CAF's PCM as whole).
"""

from __future__ import annotations

from typing import BinaryIO

SNDFILE = "sndfile"
FFMPEG_KINDS = frozenset({"mp3", "mp4", "matroska", "asf", "adts", "wavpack", "ape", "caf"})
_ASF_GUID = bytes.fromhex("3026b2758e66cf11a6d900aa0062ce6c")
_ID3_HEADER = 10
_MP3_SYNC_SEARCH = 1 << 14


def sniff(raw: BinaryIO) -> str:
    """The kind of ``raw`` from its magic bytes: a name in :data:`FFMPEG_KINDS` or :data:`SNDFILE`."""
    raw.seek(0)
    head = raw.read(64)
    if head[4:8] == b"ftyp":
        return "mp4"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "matroska"
    if head[:16] == _ASF_GUID:
        return "asf"
    if head[:4] == b"wvpk":
        return "wavpack"
    if head[:4] == b"MAC ":
        return "ape"
    if head[:4] == b"caff":
        return "caf"
    if head[:3] == b"ID3":
        return "mp3"
    if _frame_sync(head, 0):
        return "adts" if (head[1] >> 1) & 3 == 0 else "mp3"
    return SNDFILE


def _frame_sync(data: bytes, at: int) -> bool:
    """Whether an ADTS header (12 sync bits, layer 0) or an MPEG audio frame header (11 sync bits, a
    valid version, bitrate and rate index) starts at ``at``."""
    if at + 4 > len(data) or data[at] != 0xFF or data[at + 1] & 0xE0 != 0xE0:
        return False
    b1, b2 = data[at + 1], data[at + 2]
    if (b1 >> 1) & 3 == 0:
        return b1 & 0xF0 == 0xF0
    return (b1 >> 3) & 3 != 1 and b2 >> 4 != 15 and (b2 >> 2) & 3 != 3


def mp3_declares_length(raw: BinaryIO) -> bool:
    """Whether an MP3's first frame is a Xing/Info frame with a frame count, or a VBRI frame:
    the only way an MP3 states its length; without one, any length before decoding is a guess."""
    raw.seek(0)
    start = 0
    head = raw.read(_ID3_HEADER)
    while head[:3] == b"ID3" and len(head) == _ID3_HEADER:  # ID3v2 tags (sizes are syncsafe)
        size = (head[6] << 21) | (head[7] << 14) | (head[8] << 7) | head[9]
        start += _ID3_HEADER + size + (_ID3_HEADER if head[5] & 0x10 else 0)
        raw.seek(start)
        head = raw.read(_ID3_HEADER)
    raw.seek(start)
    data = raw.read(_MP3_SYNC_SEARCH)
    at = next((i for i in range(len(data) - 4) if _frame_sync(data, i) and (data[i + 1] >> 1) & 3), None)
    if at is None:
        return False
    mono = data[at + 3] >> 6 == 3
    mpeg1 = (data[at + 1] >> 3) & 3 == 3
    side_info = (17 if mono else 32) if mpeg1 else (9 if mono else 17)
    tag = at + 4 + side_info
    if data[tag:tag + 4] in (b"Xing", b"Info") and len(data) >= tag + 8:
        return bool(data[tag + 7] & 1)
    return data[at + 36:at + 40] == b"VBRI"


def caf_truncation(raw: BinaryIO) -> str | None:
    """For a CAF file: whether its ``data`` chunk declares more bytes than the file holds (FFmpeg
    then estimates the length from what is there, and a cut file would pass as whole)."""
    size = raw.seek(0, 2)
    position = 8
    while position + 12 <= size:
        raw.seek(position)
        header = raw.read(12)
        length = int.from_bytes(header[4:], "big", signed=True)
        if header[:4] == b"data":
            present = size - position - 12
            return f"data chunk declares {length} bytes, file holds {present}" if present < length else None
        if length < 0:
            return None
        position += 12 + length
    return None
