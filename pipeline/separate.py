"""`stemforge separate FILE_OR_DIR... -o OUT`: stems for a few files in one command, as demucs does.

It is `stemforge run` with a built-in config (the schema's defaults, which are vocal-remover's) and
these settings, each of which is a config key, so nothing here is a second code path:

    inputs             input.uri (a list: each keyed relative to its own folder)
    -o OUT             output.uri and output.stems_uri (stems land in OUT, not OUT/stems)
    --filename T       output.stem_path, default {track_key}/{stem}.{ext}
    --format/--subtype output.stem_format / output.stem_subtype
    --shards           output.write_spectrograms (off by default: stems only)
    --checkpoint C     model.checkpoint; --model NAME is the file NAME inside --model-dir (a path that leaves
                       it, an absolute path or an empty name is refused: a path goes to --checkpoint); neither:
                       the shipped voice/music model (model.shipped.VOICE_MUSIC, with its n_fft, hop and sha256)
    -d/--device        model.device
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from stemforge.model.shipped import VOICE_MUSIC
from stemforge.config.run import Config, ConfigError, build_config
from stemforge.pipeline.listing import describe_ignored
from stemforge.pipeline.logs import printable
from stemforge.pipeline.progress_display import add_progress_arguments
from stemforge.pipeline.sinks import run_detail
from stemforge.pipeline.storage import PathEscape, filesystem, join, redact_uri
from stemforge.text import count
from stemforge.shards.manifest import detail_name

STEM_PATH = "{track_key}/{stem}.{ext}"
MODEL_DIR_ENV = "STEMFORGE_MODEL_DIR"
SHOWN_ERRORS = 10


def default_model_dir() -> str:
    """Where ``--model NAME`` looks: $STEMFORGE_MODEL_DIR, else ~/.cache/stemforge/models."""
    return os.environ.get(MODEL_DIR_ENV) or str(Path.home() / ".cache" / "stemforge" / "models")


def add_parser(commands: Any) -> None:
    """The `separate` subcommand's options."""
    parser = commands.add_parser(
        "separate", help="separate files or folders into stems, no config needed",
        description="Separate audio files (or folders, searched recursively) into stems with the "
                    "default settings: stems go to OUT/{track_key}/{stem}.{ext}. Every option is a config "
                    "key, and --set sets any other.",
        epilog="example: stemforge separate song.mp3 album/ -o stems/ --checkpoint baseline.pth --format wav",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("inputs", nargs="+", metavar="FILE_OR_DIR", help="audio files, folders or globs (any URL)")
    parser.add_argument("-o", "--output", required=True, help="output folder (any fsspec URL)")
    parser.add_argument("--checkpoint", help="model.checkpoint: a vocal-remover, UVR or RVC .pth / .safetensors")
    parser.add_argument("--model", metavar="NAME",
                        help="a checkpoint file name inside --model-dir (a path goes to --checkpoint)")
    parser.add_argument("--model-dir", default=None,
                        help=f"where --model looks (default ${MODEL_DIR_ENV} or ~/.cache/stemforge/models)")
    parser.add_argument("--format", choices=("flac", "wav", "ogg"), help="output.stem_format (default flac)")
    parser.add_argument("--subtype", help="output.stem_subtype, e.g. PCM_16, PCM_24, FLOAT (default PCM_24)")
    parser.add_argument("--filename", default=STEM_PATH,
                        help="output.stem_path, a template of {track_key}, {stem}, {ext} and {variant} "
                             f"(default {STEM_PATH})")
    parser.add_argument("--shards", action="store_true",
                        help="also write the Parquet spectrogram shards (output.write_spectrograms)")
    parser.add_argument("-d", "--device", choices=("auto", "cpu", "cuda", "mps"), help="model.device")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override any config key")
    add_progress_arguments(parser)


def uses_shipped_model(args: argparse.Namespace) -> bool:
    """Whether `separate` runs the shipped model: neither --checkpoint nor --model, or --model naming it."""
    return not args.checkpoint and (not args.model or args.model == VOICE_MUSIC.name)


def shipped_model_note() -> None:
    """Says on stderr that the shipped demo model separates (once the run's checks passed, before its work)."""
    print(f"separate: using the shipped {VOICE_MUSIC.name} model (a small voice/music demo model; "
          "pass --checkpoint for real separation weights)", file=sys.stderr)


def model_of(args: argparse.Namespace) -> dict[str, Any]:
    """The ``model`` keys to run: --checkpoint, or --model found in the model folder (or naming the shipped
    model), or with neither the shipped voice/music model; a clear error otherwise."""
    if args.checkpoint and args.model:
        raise ConfigError("separate: pass --checkpoint PATH or --model NAME, not both")
    if args.checkpoint:
        return {"checkpoint": args.checkpoint}
    if args.model is not None and not args.model.strip():
        raise ConfigError("separate: --model is empty: name a checkpoint file in --model-dir, or leave --model out "
                          f"for the shipped {VOICE_MUSIC.name} model")
    if uses_shipped_model(args):
        return VOICE_MUSIC.config_overrides()
    folder = args.model_dir or default_model_dir()
    if args.model.startswith("/") or "://" in args.model:
        raise ConfigError(f"separate: --model {args.model}: --model names a file in the model folder "
                          f"({redact_uri(folder)}); pass a checkpoint's path or URL with --checkpoint")
    try:
        path = join(folder, args.model)
    except PathEscape as exc:
        raise ConfigError(f"separate: --model {args.model}: not a file in the model folder "
                          f"({redact_uri(folder)}): {exc.why}") from None
    fs, local = filesystem(path, {})
    if not fs.exists(local):
        found = sorted(Path(p).name for p in fs.glob(f"{local.rsplit('/', 1)[0]}/*")
                       if p.endswith((".pth", ".ckpt", ".safetensors")))
        known = f"; it has {', '.join(found[:8])}" if found else " (it holds no checkpoints)"
        raise ConfigError(f"separate: --model {args.model}: no such file in {redact_uri(folder)}{known}")
    return {"checkpoint": path}


def separate_config(args: argparse.Namespace) -> Config:
    """The built-in config with this command's settings, then --set, applied."""
    pinned = [item for item in args.set if item.split("=", 1)[0].strip() in ("output.uri", "output.stems_uri")]
    if pinned:
        raise ConfigError(f"separate: --set {pinned[0]}: -o sets output.uri and output.stems_uri (stems, manifest "
                          "and errors all go there); pass -o, or use `stemforge run` to put the stems elsewhere")
    data: dict[str, Any] = {
        "input": {"uri": list(args.inputs) if len(args.inputs) > 1 else args.inputs[0]},
        "model": model_of(args),
        "output": {"uri": args.output, "stems_uri": args.output, "stem_path": args.filename,
                   "write_spectrograms": bool(args.shards)},
    }
    for key, value in (("stem_format", args.format), ("stem_subtype", args.subtype)):
        if value is not None:
            data["output"][key] = value
    if args.device is not None:
        data["model"]["device"] = args.device
    return build_config(data, list(args.set))


def rejected_lines(manifest: dict[str, Any], config: Config) -> list[str]:
    """The first rejected inputs of a run, one line each (the full list is in errors/)."""
    if not manifest["counts"]["failed"]:
        return []
    uri = join(config.output.uri, "errors", f"{manifest['run_id']}.jsonl")
    fs, path = filesystem(uri, config.storage_options)
    records = [json.loads(line) for line in fs.cat_file(path).decode().splitlines() if line.strip()]
    lines = [f"  rejected: {printable(r['message'])}" for r in records[:SHOWN_ERRORS]]
    if len(records) > SHOWN_ERRORS:
        lines.append(f"  ... and {len(records) - SHOWN_ERRORS} more in {printable(redact_uri(uri))}")
    return lines


def print_separated(manifest: dict[str, Any], config: Config) -> None:
    """Where each separated track's stems are, and which inputs were rejected and why."""
    root = printable(redact_uri(config.output.stems_root or ""))
    tracks = run_detail(manifest, config).tracks
    skipped = manifest["counts"]["skipped"]
    print(f"{count(len(tracks), 'track')} separated into {root}"
          + (f" ({skipped} already there, skipped)" if skipped else ""))
    for key in tracks[:SHOWN_ERRORS]:
        stems = [config.output.stem_relative(key, 0, s) for s in manifest["config"]["model"]["stems"]]
        print(printable(f"  {key}: {', '.join(stems)}"))
    if len(tracks) > SHOWN_ERRORS:
        print(f"  ... and {len(tracks) - SHOWN_ERRORS} more (runs/{detail_name(manifest['run_id'])} lists them)")
    for line in rejected_lines(manifest, config):
        print(line, file=sys.stderr)
    if manifest.get("ignored"):
        print(printable(f"  {describe_ignored(manifest['ignored'])}: not audio by their extension"))
    if manifest.get("random_init"):
        print("  NOTE: random weights were used; the stems are not a real separation")
