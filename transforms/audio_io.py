"""Reading audio from any fsspec URL or local path into float32 ``[channels, frames]``.

Decoding is libsndfile's (through soundfile): WAV (8/16/24/32-bit PCM, float),
FLAC, OGG/Vorbis, Opus, MP3 and the other formats it knows, any channel count
and sample rate. Remote files are handed to soundfile as an fsspec file object,
so only the bytes that are decoded are fetched; a frame range seeks first.

Every failure is an :class:`~transforms.errors.AudioError`; the checks are:

* before decoding: missing object, directory, storage failure, unknown format,
  zero frames, a WAV-family header whose data chunk is longer than the file,
  an Ogg stream whose last page is incomplete or not flagged end-of-stream;
* while decoding: a libsndfile error or a short read (``truncated``), NaN or
  infinity in the samples (``non_finite``).

A whole-file :func:`load_audio` decodes to the end (and checks every Ogg page
CRC, since Vorbis/Opus decoders skip damaged pages silently), so every
detectable defect is found; :func:`audio_info` reads only headers (and the Ogg
tail), so it can pass a file whose damage the decoder finds later. Damage inside
uncompressed PCM carries no checksum and is undetectable.
"""

from __future__ import annotations

import os
import re
import zlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, BinaryIO

import fsspec
import numpy as np
import soundfile as sf

from transforms.errors import AudioError, scrub

DEFAULT_BLOCK_FRAMES = 1 << 16
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff")  # what folders are searched for
_OGG_TAIL_BYTES = 1 << 16
_DATA_SIZE = re.compile(r"^(?:data|SSND)\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)
_STREAMING_SIZE_PLACEHOLDER = 0xFFFFFF00
_BIT_REVERSED = bytes(int(f"{i:08b}"[::-1], 2) for i in range(256))


@dataclass(frozen=True)
class AudioInfo:
    """What the header says: frame count, rate, channel count, container, encoding."""

    frames: int
    sample_rate: int
    channels: int
    format: str
    subtype: str


class AudioReader:
    """An open audio file with checked random-access reads (see :func:`open_audio`)."""

    def __init__(self, uri: str, sound_file: sf.SoundFile, info: AudioInfo) -> None:
        self.uri = uri
        self.info = info
        self._file = sound_file

    def read(self, start: int, stop: int) -> np.ndarray:
        """Frames ``[start, stop)`` as float32 ``[channels, stop - start]``.

        Raises AudioError ``truncated`` if the decoder fails or delivers fewer
        frames than asked, ``non_finite`` on NaN/inf.
        """
        if not 0 <= start <= stop <= self.info.frames:
            raise ValueError(f"frame range [{start}, {stop}) outside [0, {self.info.frames}]")
        out = np.empty((self.info.channels, stop - start), dtype=np.float32)
        self._fill(out, start)
        return out

    def blocks(self, block_frames: int = DEFAULT_BLOCK_FRAMES, start: int = 0,
               stop: int | None = None) -> Iterator[np.ndarray]:
        """Consecutive checked blocks of at most ``block_frames`` covering ``[start, stop)``."""
        stop = self.info.frames if stop is None else stop
        if block_frames <= 0:
            raise ValueError("block_frames must be positive")
        for block_start in range(start, stop, block_frames):
            yield self.read(block_start, min(block_start + block_frames, stop))

    def _fill(self, out: np.ndarray, start: int) -> None:
        """Decode into ``out`` (``[channels, n]``) from frame ``start``, checking as it goes."""
        wanted = out.shape[1]
        if wanted == 0:
            return
        try:
            if self._file.tell() != start:
                self._file.seek(start)
            done = 0
            while done < wanted:
                block = self._file.read(min(DEFAULT_BLOCK_FRAMES, wanted - done),
                                        dtype="float32", always_2d=True)
                got = block.shape[0]
                if got == 0:
                    break
                out[:, done:done + got] = block.T
                done += got
        except (sf.SoundFileError, RuntimeError) as exc:
            raise AudioError(self.uri, "truncated", f"decoding failed at or after frame {start}: {exc}") from exc
        if done < wanted:
            raise AudioError(
                self.uri, "truncated",
                f"stream ends at frame {start + done}, header declares {self.info.frames} frames",
            )
        if not np.isfinite(out).all():
            first = int(np.argwhere(~np.isfinite(out))[0, 1]) + start
            raise AudioError(self.uri, "non_finite", f"NaN or infinite sample at frame {first}")


def _resolve(uri: str, storage_options: Mapping[str, Any] | None) -> tuple[Any, str]:
    """The fsspec filesystem and path for ``uri``; AudioError on a missing object or a directory."""
    name = os.fspath(uri)
    try:
        fs, path = fsspec.core.url_to_fs(name, **dict(storage_options or {}))
        details = fs.info(path)
    except FileNotFoundError:
        raise AudioError(name, "not_found", "no such file or object") from None
    except IsADirectoryError:
        raise AudioError(name, "is_directory", "is a directory, not an audio file") from None
    except Exception as exc:  # noqa: BLE001 - any storage backend failure becomes an AudioError
        detail = scrub(f"{type(exc).__name__}: {exc}", storage_options)
        raise AudioError(name, "io_error", f"cannot access storage ({detail})") from None
    if details.get("type") == "directory":
        raise AudioError(name, "is_directory", "is a directory, not an audio file")
    return fs, path


def _ogg_stream_complete(raw: BinaryIO) -> bool | None:
    """For an Ogg stream: whether its last page is whole and flagged end-of-stream (None: not Ogg)."""
    raw.seek(0)
    if raw.read(4) != b"OggS":
        return None
    size = raw.seek(0, os.SEEK_END)
    raw.seek(max(0, size - _OGG_TAIL_BYTES))
    tail = raw.read()
    position = tail.rfind(b"OggS")
    if position < 0 or position + 27 > len(tail):
        return False
    segments = tail[position + 27:position + 27 + tail[position + 26]]
    page_end = position + 27 + tail[position + 26] + sum(segments)
    return bool(tail[position + 5] & 0x04) and page_end <= len(tail)


def _ogg_crc(page: bytes) -> int:
    """Ogg's CRC-32 (polynomial 0x04C11DB7, MSB first, no reflection, init 0, no final xor).

    zlib's CRC-32 is the bit-reflected form of the same polynomial: feeding it
    bit-reversed bytes with its init/final xor undone and reversing the result
    gives Ogg's checksum at C speed.
    """
    reflected = zlib.crc32(page.translate(_BIT_REVERSED), 0xFFFFFFFF) ^ 0xFFFFFFFF
    return int(f"{reflected:032b}"[::-1], 2)


def _ogg_damage(raw: BinaryIO) -> str | None:
    """Walk every Ogg page (one page in memory at a time) checking capture pattern, length and CRC.

    Returns a description of the first fault, or None for an intact stream.
    """
    raw.seek(0)
    position = page = 0
    while header := raw.read(27):
        if len(header) < 27 or header[:4] != b"OggS":
            return f"no Ogg page at byte {position}"
        table = raw.read(header[26])
        body = raw.read(sum(table))
        if len(table) < header[26] or len(body) < sum(table):
            return f"page {page} at byte {position} runs past the end of the file"
        stored = int.from_bytes(header[22:26], "little")
        if _ogg_crc(header[:22] + bytes(4) + header[26:] + table + body) != stored:
            return f"page {page} at byte {position} fails its CRC"
        position += 27 + len(table) + len(body)
        page += 1
    return None


def _header_truncation(sound_file: sf.SoundFile) -> str | None:
    """libsndfile's note that a WAV/AIFF data chunk is longer than the file, if any."""
    for declared, present in _DATA_SIZE.findall(sound_file.extra_info):
        declared_bytes, present_bytes = int(declared), int(present)
        if 0 < declared_bytes < _STREAMING_SIZE_PLACEHOLDER and present_bytes < declared_bytes:
            return f"data chunk declares {declared_bytes} bytes, file holds {present_bytes}"
    return None


def _open_error(name: str, exc: Exception) -> AudioError:
    """Classify a libsndfile open failure."""
    text = str(exc)
    if "malformed" in text:
        return AudioError(name, "truncated", f"known format but malformed (truncated or corrupt): {text}")
    return AudioError(name, "unreadable", f"not a decodable audio file: {text}")


@contextmanager
def open_audio(uri: str | os.PathLike[str], storage_options: Mapping[str, Any] | None = None,
               verify: bool = False) -> Iterator[AudioReader]:
    """Open ``uri`` for checked reads; header-level checks happen here.

    Local files are opened by libsndfile directly; anything else through an
    fsspec file object (seekable, read on demand). ``verify=True`` also checks
    every page CRC of an Ogg stream (one extra read of the compressed file):
    Vorbis/Opus decoders skip damaged pages silently, so decoding alone cannot
    find corruption in the middle.
    """
    name = os.fspath(uri)
    fs, path = _resolve(name, storage_options)
    local = "file" in (fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,))
    try:
        raw: BinaryIO = open(path, "rb") if local else fs.open(path, "rb")  # noqa: SIM115 - closed by `with raw`
    except IsADirectoryError:
        raise AudioError(name, "is_directory", "is a directory, not an audio file") from None
    except FileNotFoundError:
        raise AudioError(name, "not_found", "no such file or object") from None
    except Exception as exc:  # noqa: BLE001
        detail = scrub(f"{type(exc).__name__}: {exc}", storage_options)
        raise AudioError(name, "io_error", f"cannot open ({detail})") from None
    with raw:
        try:
            ogg_complete = _ogg_stream_complete(raw)
            ogg_damage = _ogg_damage(raw) if verify and ogg_complete else None
            raw.seek(0)
        except Exception as exc:  # noqa: BLE001
            detail = scrub(f"{type(exc).__name__}: {exc}", storage_options)
            raise AudioError(name, "io_error", f"cannot read ({detail})") from None
        if ogg_complete is False:
            raise AudioError(name, "truncated", "Ogg stream cut off: last page incomplete or not end-of-stream")
        if ogg_damage:
            raise AudioError(name, "truncated", f"corrupt Ogg stream: {ogg_damage}")
        try:
            sound_file = sf.SoundFile(path if local else raw)
        except (sf.SoundFileError, RuntimeError) as exc:
            raise _open_error(name, exc) from exc
        with sound_file:
            info = AudioInfo(
                frames=int(sound_file.frames),
                sample_rate=int(sound_file.samplerate),
                channels=int(sound_file.channels),
                format=str(sound_file.format),
                subtype=str(sound_file.subtype),
            )
            if info.sample_rate <= 0 or info.channels <= 0:
                raise AudioError(name, "unreadable",
                                 f"invalid header: {info.channels} channels at {info.sample_rate} Hz")
            if info.frames <= 0:
                raise AudioError(name, "empty", "zero audio frames")
            truncation = _header_truncation(sound_file)
            if truncation:
                raise AudioError(name, "truncated", truncation)
            yield AudioReader(name, sound_file, info)


def audio_info(uri: str | os.PathLike[str], storage_options: Mapping[str, Any] | None = None) -> AudioInfo:
    """Header facts of ``uri`` without decoding samples; AudioError as :func:`open_audio`."""
    with open_audio(uri, storage_options) as reader:
        return reader.info


def load_audio(uri: str | os.PathLike[str], storage_options: Mapping[str, Any] | None = None,
               start: int | None = None, stop: int | None = None) -> tuple[np.ndarray, int]:
    """Decode ``uri`` (or frames ``[start, stop)`` of it) to float32 ``[channels, frames]``.

    A whole-file read also verifies Ogg page checksums (see :func:`open_audio`).
    ``stop`` beyond the end is clipped to the end, like slicing; negative values
    are refused. Returns ``(samples, sample_rate)``.
    """
    if (start is not None and start < 0) or (stop is not None and stop < 0):
        raise ValueError("start and stop must be non-negative frame indices")
    whole = start is None and stop is None
    with open_audio(uri, storage_options, verify=whole) as reader:
        first = 0 if start is None else min(start, reader.info.frames)
        last = reader.info.frames if stop is None else min(stop, reader.info.frames)
        if last < first:
            raise ValueError(f"stop ({stop}) is before start ({start})")
        try:
            samples = np.empty((reader.info.channels, last - first), dtype=np.float32)
        except MemoryError:
            raise AudioError(reader.uri, "unreadable",
                             f"header declares {reader.info.frames} frames, too many to hold") from None
        reader._fill(samples, first)
        return samples, reader.info.sample_rate
