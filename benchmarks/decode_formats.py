"""What an exact length costs: opening and streaming a long track through each decoder.

Makes ``--minutes`` of stereo 44.1 kHz music-like audio, encodes it with the ffmpeg command as FLAC
(libsndfile, length from its header), MP3 with and without a Xing header, AAC in M4A and Opus in WebM
(FFmpeg through PyAV: decoded once, to the end, into an anonymous float32 scratch file at open, so
the length is exact and later reads are ranges), then measures, best of ``--repeats``, files in the
page cache:

* open: ``open_audio`` alone (for FFmpeg's formats, the whole decode and the scratch write);
* open + stream: opening, then reading every frame in 1 s blocks, as the pipeline does;
* count only: ``audio_info`` (FFmpeg's formats without a declared length are decoded, nothing stored);
* ffmpeg CLI: ``ffmpeg -i FILE -f f32le -`` to /dev/null, the same decoder without Python.

Also the scratch bytes per hour of audio and the peak resident memory growth. Prints a Markdown table.

    .venv/bin/python benchmarks/decode_formats.py [--minutes 10] [--repeats 3] [--dir /tmp/decode-bench]
"""

from __future__ import annotations

import argparse
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from stemforge.transforms import audio_info, open_audio

SR = 44100
FORMATS = [
    ("FLAC", "x.flac", ("-c:a", "flac")),
    ("MP3 VBR, Xing", "x.mp3", ("-c:a", "libmp3lame", "-q:a", "2")),
    ("MP3 VBR, no Xing", "nx.mp3", ("-c:a", "libmp3lame", "-q:a", "2", "-write_xing", "0")),
    ("AAC in M4A", "x.m4a", ("-c:a", "aac", "-b:a", "160k")),
    ("Opus in WebM", "x.webm", ("-c:a", "libopus", "-b:a", "128k")),
]


def make_source(path: Path, minutes: float) -> None:
    """Tones, a slow sweep and noise, written in 10 s pieces (bounded memory)."""
    rng = np.random.default_rng(0)
    with sf.SoundFile(path, "w", SR, 2, subtype="PCM_16") as out:
        for start in range(0, int(minutes * 60 * SR), 10 * SR):
            t = (start + np.arange(10 * SR)) / SR
            left = 0.3 * np.sin(2 * np.pi * 330 * t) + 0.2 * np.sin(2 * np.pi * (200 + 3 * (t % 60)) * t)
            right = 0.3 * np.sin(2 * np.pi * 523 * t) + 0.05 * rng.standard_normal(t.size)
            out.write(np.stack([left, right], axis=1).astype(np.float32))


def best(repeats: int, run) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def measure(path: Path, repeats: int, scratch: str) -> dict[str, float | str]:
    def opened() -> None:
        with open_audio(str(path), scratch_dir=scratch) as reader:
            assert reader.info.frames > 0

    def streamed() -> None:
        with open_audio(str(path), scratch_dir=scratch) as reader:
            for _ in reader.blocks(SR):
                pass

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    stream = best(repeats, streamed)
    growth = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss) / 1024
    info = audio_info(str(path))
    cli = best(repeats, lambda: subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-f", "f32le", "-y",
                                                "/dev/null"], check=True))
    return {"decoder": f"{info.decoder} ({info.length})", "open": best(repeats, opened), "stream": stream,
            "count": best(repeats, lambda: audio_info(str(path))), "cli": cli, "seconds": info.frames / info.sample_rate,
            "scratch_gb_h": 0.0 if info.decoder == "libsndfile" else 2 * 4 * info.sample_rate * 3600 / 1e9,
            "rss_mb": growth}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dir", default=None)
    args = parser.parse_args()
    if shutil.which("ffmpeg") is None:
        sys.exit("decode_formats.py needs the ffmpeg command to make its files")
    folder = Path(args.dir or tempfile.mkdtemp(prefix="decode-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    source = folder / "source.wav"
    make_source(source, args.minutes)
    print(f"{args.minutes:g} min stereo 44.1 kHz, best of {args.repeats}; seconds of wall time\n")
    print("| format | decoder (length) | open | open + stream all | count only (`audio_info`) "
          "| ffmpeg CLI decode | × real time (stream) | scratch GB per hour | peak RSS growth MB |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, filename, codec in FORMATS:
        path = folder / filename
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(source), *codec, str(path)], check=True)
        r = measure(path, args.repeats, str(folder))
        print(f"| {name} | {r['decoder']} | {r['open']:.2f} | {r['stream']:.2f} | {r['count']:.2f} | {r['cli']:.2f} "
              f"| {r['seconds'] / r['stream']:.0f} | {r['scratch_gb_h']:.2f} | {r['rss_mb']:.0f} |")


if __name__ == "__main__":
    main()
