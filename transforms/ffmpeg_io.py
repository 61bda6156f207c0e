"""The second decoder: FFmpeg through PyAV, for what libsndfile cannot read exactly.

Most containers FFmpeg reads state no exact length (an MP3 without a Xing/Info frame, raw AAC) or
only a rounded duration (Matroska in milliseconds), so the stream is decoded once, to its end, into
a float32 scratch file, and its frames are counted: the length is what decodes. Later reads are
ranges of that file, so a long track still streams in bounded memory and is decoded only once.

Gapless information is what FFmpeg applies: the mp3 demuxer's LAME/Xing encoder delay and padding,
the mov demuxer's edit list start (and iTunes' ``iTunSMPB`` priming); this module also cuts an
MP4's end padding to the edit list's duration, which FFmpeg leaves in the decode.

Truncation is caught where the file says how long it is: an MP3 whose Xing/VBRI frame declares
more frames than decode, an MP4 whose sample table lists more packets than the file holds (or no
``moov`` at all), a container whose declared duration its packets do not reach, a packet that
fails to decode. FFmpeg's messages never reach the terminal: they go into the error when they
explain a rejection, to the ``stemforge.decode`` debug log otherwise.

Why PyAV and not torchcodec: PyAV's wheels carry FFmpeg's libraries, so no system FFmpeg is needed on
a worker; torchcodec loads a system FFmpeg and each release is built for one torch version. PyAV also
reads Python file objects, so fsspec's S3/GCS/HTTP files stream into it as into libsndfile.
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
from fractions import Fraction
from typing import IO, Any, BinaryIO

import av
import av.logging
import numpy as np

from stemforge.transforms.audio_reader import AudioInfo, AudioReader
from stemforge.transforms.audio_sniff import mp3_declares_length
from stemforge.transforms.errors import AudioError

LOG = logging.getLogger("stemforge.decode")
_SAMPLES = {"u8": (np.uint8, 128.0), "s16": (np.int16, 2.0 ** 15), "s32": (np.int32, 2.0 ** 31),
            "s64": (np.int64, 2.0 ** 63), "flt": (np.float32, 1.0), "dbl": (np.float64, 1.0)}  # dtype, full scale
_WRITE_FRAMES = 1 << 16  # decoded frames are written to the scratch file in blocks of about this many
_FORMATS = {"mp3": "MP3", "mp4": "MP4", "matroska": "MATROSKA", "asf": "ASF", "adts": "AAC", "wavpack": "WAVPACK",
            "ape": "APE", "caf": "CAF"}
_NO_LENGTH = frozenset({"mp3", "adts", "unknown"})  # a duration FFmpeg reports here may be a bitrate estimate
_EXACT = frozenset({"mp4", "wavpack"})  # their headers count samples (MP3: with a Xing/VBRI frame)
_END_TOLERANCE = Fraction(1, 1000)  # Matroska and ASF state durations in milliseconds
_quiet = threading.Lock()  # held for good once FFmpeg's log is routed


class _ToDebug(logging.Handler):
    """FFmpeg messages outside a capture (another thread's decoder, say) go to the debug log."""

    def emit(self, record: logging.LogRecord) -> None:
        LOG.debug("%s: %s", record.name, record.getMessage().strip())


def silence_ffmpeg() -> None:
    """Route FFmpeg's log through PyAV (at WARNING) into Python logging, never to fd 2."""
    if not _quiet.acquire(blocking=False):
        return
    libav = logging.getLogger("libav")
    libav.propagate = False
    libav.addHandler(_ToDebug())
    av.logging.set_level(av.logging.WARNING)


class DecodedReader(AudioReader):
    """Reads of a stream decoded once into an interleaved float32 scratch file."""

    def __init__(self, uri: str, info: AudioInfo, scratch: IO[bytes]) -> None:
        super().__init__(uri, info)
        self._fd = scratch.fileno()

    def _decode_into(self, out: np.ndarray, start: int) -> int:
        channels = self.info.channels
        data = os.pread(self._fd, out.shape[1] * channels * 4, start * channels * 4)
        done = len(data) // (4 * channels)
        out[:, :done] = np.frombuffer(data, np.float32, done * channels).reshape(done, channels).T
        return done


def _as_float(frame: av.AudioFrame, channels: int) -> np.ndarray:
    """A decoded frame as float32 ``[samples, channels]`` (integer PCM scaled to ±1), read from its planes."""
    count = frame.samples
    dtype, scale = _SAMPLES[frame.format.name.rstrip("p")]
    if frame.format.is_planar:
        out = np.empty((count, channels), np.float32)
        for channel, plane in enumerate(frame.planes):
            out[:, channel] = np.frombuffer(plane, dtype, count)
    else:
        out = np.frombuffer(frame.planes[0], dtype, count * channels).reshape(count, channels).astype(np.float32)
    if dtype is np.uint8:
        out -= scale
    if scale != 1.0:
        out *= 1.0 / scale
    return out


def _log_text(logs: list[tuple[int, str, str]]) -> str:
    """FFmpeg's distinct messages in one line, errors only where there are any (for an error record)."""
    errors = [entry for entry in logs if entry[0] <= av.logging.ERROR]
    seen = dict.fromkeys(message.strip().replace("\n", " ") for _, _, message in errors or logs if message.strip())
    return "; ".join(list(seen)[-3:])


def _detail(text: str, logs: list[tuple[int, str, str]]) -> str:
    said = _log_text(logs)
    return f"{text} (ffmpeg: {said})" if said else text


class _Decode:
    """One pass over the first audio stream: counts frames, writes them to ``sink`` if given."""

    def __init__(self, name: str, raw: BinaryIO, kind: str, sink: IO[bytes] | None) -> None:
        self.name, self.kind, self.sink = name, kind, sink
        self.frames = self.packets = 0
        self._pending: list[np.ndarray] = []
        self._pending_frames = 0
        self.rate = self.channels = 0
        self.packet_end: Fraction | None = None
        raw.seek(0)
        self.xing = kind == "mp3" and mp3_declares_length(raw)
        raw.seek(0)
        self.raw = raw

    def run(self, logs: list[tuple[int, str, str]]) -> AudioInfo:
        try:
            container = av.open(self.raw, mode="r", metadata_errors="ignore")
        except av.FFmpegError as exc:
            reason = "unreadable" if self.kind == "unknown" else "truncated"
            what = "not a decodable audio file" if reason == "unreadable" else "known format but malformed"
            raise AudioError(self.name, reason, _detail(f"{what}: {exc.strerror}", logs)) from None
        with container:
            if not container.streams.audio:
                raise AudioError(self.name, "unreadable", "no audio stream")
            stream = container.streams.audio[0]
            stream.codec_context.options = {"err_detect": "crccheck"}  # FLAC's and others' frame CRCs
            self.rate, self.channels = stream.codec_context.sample_rate, stream.codec_context.channels
            if self.rate <= 0 or self.channels <= 0:
                raise AudioError(self.name, "unreadable",
                                 f"invalid header: {self.channels} channels at {self.rate} Hz")
            seconds, exact = self._declared(container, stream)
            if self.sink is None and exact:  # header facts only, as libsndfile's audio_info
                return self._described(container, stream, exact, exact)
            self._decode_all(container, stream, logs)
            return self._info(container, stream, seconds, exact, logs)

    def _decode_all(self, container: Any, stream: Any, logs: list[tuple[int, str, str]]) -> None:
        """Decode every packet; a decoder error, or an error FFmpeg only logs while it conceals damage
        (a skipped frame, a lost resync), is ``truncated``: nothing is dropped silently."""
        opened = seen = len(logs)
        end = None  # the last packet's end, in the stream's time base
        try:
            for packet in container.demux(stream):
                if packet.size and packet.pts is not None:
                    self.packets += 1
                    end = max(end or 0, packet.pts + (packet.duration or 0))
                for frame in packet.decode():
                    self._take(frame)
                if len(logs) > seen:
                    seen = len(logs)
                    if any(level <= av.logging.ERROR for level, _, _ in logs[opened:]):
                        raise AudioError(self.name, "truncated", _detail(
                            f"damaged stream at or after frame {self.frames}", logs[opened:]))
        except av.FFmpegError as exc:
            raise AudioError(self.name, "truncated", _detail(
                f"decoding failed at or after frame {self.frames}: {exc.strerror}", logs)) from None
        self._write()
        self.packet_end = None if end is None else end * stream.time_base

    def _take(self, frame: av.AudioFrame) -> None:
        if frame.sample_rate != self.rate or len(frame.layout.channels) != self.channels:
            raise AudioError(self.name, "unreadable", f"stream changes to {len(frame.layout.channels)} channels at "
                             f"{frame.sample_rate} Hz at frame {self.frames}")
        samples = _as_float(frame, self.channels)
        self.frames += samples.shape[0]
        if self.sink is not None:
            self._pending.append(samples)
            self._pending_frames += samples.shape[0]
            if self._pending_frames >= _WRITE_FRAMES:
                self._write()

    def _write(self) -> None:
        """Append the frames decoded since the last write to the scratch file, in one write."""
        if self._pending:
            self.sink.write(np.concatenate(self._pending).data)
        self._pending, self._pending_frames = [], 0

    def _declared(self, container: Any, stream: Any) -> tuple[Fraction | None, int | None]:
        """(declared duration in seconds, declared exact frame count) where the file states them."""
        if self.kind in _NO_LENGTH and not self.xing:
            return None, None
        seconds = None
        if stream.duration is not None and stream.duration > 0:
            seconds = stream.duration * stream.time_base
        elif container.duration:
            seconds = Fraction(container.duration, av.time_base)
        exact = seconds * self.rate if seconds is not None and (self.kind in _EXACT or self.xing) else None
        return seconds, int(exact) if exact is not None and exact.denominator == 1 else None

    def _info(self, container: Any, stream: Any, seconds: Fraction | None, exact: int | None,
              logs: list[tuple[int, str, str]]) -> AudioInfo:
        if self.kind == "mp4" and stream.frames and self.packets < stream.frames:
            raise AudioError(self.name, "truncated", _detail(
                f"stream ends at packet {self.packets}, sample table lists {stream.frames}", logs))
        if exact is not None and self.xing and self.frames < exact:
            raise AudioError(self.name, "truncated", _detail(
                f"stream ends at frame {self.frames}, Xing header declares {exact} frames", logs))
        if seconds is not None and (self.packet_end is None or self.packet_end < seconds - _END_TOLERANCE):
            reached = float(self.packet_end or 0)
            raise AudioError(self.name, "truncated", _detail(
                f"stream ends at {reached:.3f} s, container declares {float(seconds):.3f} s", logs))
        if self.frames <= 0:
            raise AudioError(self.name, "empty", "zero audio frames")
        frames = self.frames
        if self.kind == "mp4" and exact is not None and exact < frames:
            frames = exact  # the edit list's end: FFmpeg trims the start (priming), not the end padding
        said = _log_text(logs)
        if said:
            LOG.debug("%s: ffmpeg: %s", self.name, said)
        return self._described(container, stream, frames, exact)

    def _described(self, container: Any, stream: Any, frames: int, exact: int | None) -> AudioInfo:
        subtype = "MPEG_LAYER_III" if self.kind == "mp3" else stream.codec_context.name.upper()
        return AudioInfo(frames, self.rate, self.channels, _FORMATS.get(self.kind, container.format.name.upper()),
                         subtype, "ffmpeg", "declared" if frames == exact else "counted")


def decode(name: str, raw: BinaryIO, kind: str, scratch_dir: str | None = None,
           keep: bool = True) -> tuple[AudioInfo, IO[bytes] | None]:
    """Decode ``raw`` to its end with FFmpeg: its :class:`AudioInfo` and, with ``keep``, an anonymous
    scratch file (in ``scratch_dir``) holding the samples; AudioError as the libsndfile path."""
    silence_ffmpeg()
    sink = tempfile.TemporaryFile(dir=scratch_dir) if keep else None  # noqa: SIM115 - the reader owns it
    try:
        with av.logging.Capture(local=True) as logs:
            info = _Decode(name, raw, kind, sink).run(logs)
    except BaseException:
        if sink is not None:
            sink.close()
        raise
    if sink is not None:
        sink.flush()
    return info, sink
