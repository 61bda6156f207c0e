"""Reading audio from any fsspec URL or local path into float32 ``[channels, frames]``.

Two decoders sit behind one :class:`AudioReader`, chosen per file from its first bytes
(:mod:`transforms.audio_sniff`), never from its name:

* libsndfile (through soundfile) for what it reads exactly: WAV (8/16/24/32-bit PCM, float),
  FLAC, AIFF, Ogg Vorbis/Opus and the other formats it knows, any channel count
  and sample rate. Remote files are handed to it as an fsspec file object, so only the bytes
  that are decoded are fetched; a frame range seeks first.
* FFmpeg (through PyAV, :mod:`transforms.ffmpeg_io`) for MP3, MP4/M4A (AAC, ALAC), Matroska/WebM,
  ASF/WMA, raw AAC, WavPack, Monkey's Audio, ALAC in CAF, and anything libsndfile does not
  recognise but FFmpeg opens. These are decoded once, to the end, into a local scratch file at
  open, so the length is exact (counted where the file states none) and later reads are ranges.

Every failure is an :class:`~transforms.errors.AudioError`; the checks are:

* before decoding: missing object, directory, storage failure, unknown format,
  zero frames, a WAV-family header whose data chunk is longer than the file,
  an Ogg stream whose last page is incomplete or not flagged end-of-stream;
* while decoding: a decoder error or a short read (``truncated``), NaN or
  infinity in the samples (``non_finite``); for FFmpeg's formats also a stream
  shorter than its container or Xing header declares (``truncated``).

A whole-file :func:`load_audio` decodes to the end (and checks every Ogg page
CRC, since Vorbis/Opus decoders skip damaged pages silently), so every
detectable defect is found; :func:`audio_info` reads only headers (and the Ogg
tail) for libsndfile's formats, so it can pass a file whose damage the decoder
finds later. Damage inside uncompressed PCM carries no checksum and is undetectable.
"""

from __future__ import annotations

import os
import re
import zlib
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, ExitStack, contextmanager
from typing import Any, BinaryIO

import fsspec
import numpy as np
import soundfile as sf

from stemforge.transforms import ffmpeg_io
from stemforge.transforms.audio_reader import DEFAULT_BLOCK_FRAMES, AudioInfo, AudioReader
from stemforge.transforms.audio_sniff import FFMPEG_KINDS, caf_truncation, sniff
from stemforge.transforms.errors import AudioError, is_transient
from stemforge.transforms.redaction import scrub

# what folders are searched for: every extension here is read by one of the two decoders (tested)
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".m4a", ".mp4", ".aac",
                    ".webm", ".mka", ".mkv", ".wma", ".alac", ".caf", ".wv")
_OGG_TAIL_BYTES = 1 << 16
_DATA_SIZE = re.compile(r"^(?:data|SSND)\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)
_STREAMING_SIZE_PLACEHOLDER = 0xFFFFFF00
_BIT_REVERSED = bytes(int(f"{i:08b}"[::-1], 2) for i in range(256))


class SoundFileReader(AudioReader):
    """Reads through libsndfile, which seeks in the file itself."""

    def __init__(self, uri: str, sound_file: sf.SoundFile, info: AudioInfo) -> None:
        super().__init__(uri, info)
        self._file = sound_file

    def _decode_into(self, out: np.ndarray, start: int) -> int:
        wanted = out.shape[1]
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
        return done


def _unreachable(exc: BaseException) -> BaseException | None:
    """The connection failure behind a FileNotFoundError, if any: fsspec's HTTP filesystem reports a refused
    or timed-out connection as a missing file, with the real error as its cause."""
    seen = exc.__cause__ or exc.__context__
    while seen is not None:
        if is_transient(seen):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _missing(name: str, exc: FileNotFoundError, storage_options: Mapping[str, Any] | None) -> AudioError:
    """``not_found``, or ``io_error`` (possibly transient) when the storage could not be reached at all."""
    cause = _unreachable(exc)
    if cause is None:
        return AudioError(name, "not_found", "no such file or object")
    detail = scrub(f"{type(cause).__name__}: {cause}", storage_options)
    return AudioError(name, "io_error", f"cannot reach storage ({detail})", transient=True)


def _resolve(uri: str, storage_options: Mapping[str, Any] | None) -> tuple[Any, str]:
    """The fsspec filesystem and path for ``uri``; AudioError on a missing object or a directory."""
    name = os.fspath(uri)
    try:
        fs, path = fsspec.core.url_to_fs(name, **dict(storage_options or {}))
        details = fs.info(path)
    except FileNotFoundError as exc:
        raise _missing(name, exc, storage_options) from None
    except IsADirectoryError:
        raise AudioError(name, "is_directory", "is a directory, not an audio file") from None
    except Exception as exc:  # noqa: BLE001 - any storage backend failure becomes an AudioError
        detail = scrub(f"{type(exc).__name__}: {exc}", storage_options)
        raise AudioError(name, "io_error", f"cannot access storage ({detail})", is_transient(exc)) from None
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


def _open_raw(name: str, fs: Any, path: str, local: bool,
              storage_options: Mapping[str, Any] | None) -> BinaryIO:
    """The file as a seekable binary object (local: a plain file; else fsspec's, read on demand)."""
    try:
        return open(path, "rb") if local else fs.open(path, "rb")  # noqa: SIM115 - the caller closes it
    except IsADirectoryError:
        raise AudioError(name, "is_directory", "is a directory, not an audio file") from None
    except FileNotFoundError as exc:
        raise _missing(name, exc, storage_options) from None
    except Exception as exc:  # noqa: BLE001
        detail = scrub(f"{type(exc).__name__}: {exc}", storage_options)
        raise AudioError(name, "io_error", f"cannot open ({detail})", is_transient(exc)) from None


@contextmanager
def _ffmpeg_reader(name: str, raw: BinaryIO, kind: str, scratch_dir: str | None,
                   keep: bool) -> Iterator[AudioReader]:
    """FFmpeg's reader of ``raw``; without ``keep`` only its info is known (no samples are stored)."""
    info, scratch = ffmpeg_io.decode(name, raw, kind, scratch_dir, keep)
    if scratch is None:
        yield AudioReader(name, info)
        return
    with scratch:
        yield ffmpeg_io.DecodedReader(name, info, scratch)


def open_audio(uri: str | os.PathLike[str], storage_options: Mapping[str, Any] | None = None,
               verify: bool = False, scratch_dir: str | None = None) -> AbstractContextManager[AudioReader]:
    """Open ``uri`` for checked reads; header-level checks happen here.

    Local files are opened by libsndfile directly; anything else through an
    fsspec file object (seekable, read on demand). ``verify=True`` also checks
    every page CRC of an Ogg stream (one extra read of the compressed file):
    Vorbis/Opus decoders skip damaged pages silently, so decoding alone cannot
    find corruption in the middle. A file FFmpeg decodes is decoded here, whole,
    into an anonymous scratch file in ``scratch_dir`` (the system's temporary
    folder by default), removed when the block ends.
    """
    return _open(os.fspath(uri), storage_options, verify, scratch_dir, keep=True)


@contextmanager
def _open(name: str, storage_options: Mapping[str, Any] | None, verify: bool, scratch_dir: str | None,
          keep: bool) -> Iterator[AudioReader]:
    """:func:`open_audio`; without ``keep``, FFmpeg's formats are decoded only to count their frames."""
    fs, path = _resolve(name, storage_options)
    local = "file" in (fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,))
    with _open_raw(name, fs, path, local, storage_options) as raw:
        try:
            kind = sniff(raw)
            ogg_complete = _ogg_stream_complete(raw)
            ogg_damage = _ogg_damage(raw) if verify and ogg_complete else None
            raw.seek(0)
        except Exception as exc:  # noqa: BLE001
            detail = scrub(f"{type(exc).__name__}: {exc}", storage_options)
            raise AudioError(name, "io_error", f"cannot read ({detail})", is_transient(exc)) from None
        truncation = caf_truncation(raw) if kind == "caf" else None
        if truncation:
            raise AudioError(name, "truncated", truncation)
        if kind in FFMPEG_KINDS:
            with _ffmpeg_reader(name, raw, kind, scratch_dir, keep) as reader:
                yield reader
            return
        if ogg_complete is False:
            raise AudioError(name, "truncated", "Ogg stream cut off: last page incomplete or not end-of-stream")
        if ogg_damage:
            raise AudioError(name, "truncated", f"corrupt Ogg stream: {ogg_damage}")
        try:
            sound_file = sf.SoundFile(path if local else raw)
        except (sf.SoundFileError, RuntimeError) as exc:
            refused = _open_error(name, exc)
            if refused.reason == "truncated":
                raise refused from exc
            with ExitStack() as stack:
                try:  # libsndfile does not know it: FFmpeg may
                    raw.seek(0)
                    reader = stack.enter_context(_ffmpeg_reader(name, raw, "unknown", scratch_dir, keep))
                except AudioError:
                    raise refused from exc
                yield reader
            return
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
            yield SoundFileReader(name, sound_file, info)


def audio_info(uri: str | os.PathLike[str], storage_options: Mapping[str, Any] | None = None) -> AudioInfo:
    """Header facts of ``uri``; AudioError as :func:`open_audio`. libsndfile's formats are not decoded;
    FFmpeg's are decoded to count their frames (nothing is stored)."""
    with _open(os.fspath(uri), storage_options, False, None, keep=False) as reader:
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


SOUNDFILE_FORMATS = {"flac": "FLAC", "wav": "WAV", "ogg": "OGG"}  # the stem formats, as libsndfile names them


def check_stem_format(stem_format: str, subtype: str) -> None:
    """Refuse a subtype that libsndfile cannot write in ``stem_format`` (FLOAT in FLAC, PCM_24 in Ogg)."""
    container = SOUNDFILE_FORMATS[stem_format]
    allowed = list(sf.available_subtypes(container))
    if not sf.check_format(container, subtype.upper()):
        raise ValueError(f"{stem_format} cannot hold the subtype {subtype!r}; it takes {', '.join(allowed)}")
