"""Bit-for-bit output comparison for refactors (issue 22's invariants): a refactor changes no stem and no row.

    TREE/.venv-wt/bin/python scripts/compare_outputs.py make DIR      # run the varied corpus with TREE's CLI
    python scripts/compare_outputs.py digest DIR -o DIR.json          # hash every stem, row and error record
    python scripts/compare_outputs.py compare OLD.json NEW.json       # print every difference; exit 1 if any

``make`` writes the inputs and random-weight checkpoints (with the test helpers of tests/) into DIR, then runs
each case of ``corpus_cases.CASES`` through ``python -m stemforge`` with the interpreter that runs this script, so
it exercises the tree that interpreter has installed (docs/pipeline.md: one small virtualenv per tree). Paths given to the CLI are relative to DIR, run ids are fixed
(``run.run_id``) and torch runs one thread, so two ``make``s of one tree give equal digests.

What must match: a WAV or FLAC stem's bytes (and its decoded samples); an Ogg stem's decoded samples only (its
container carries a random stream serial number); every shard row's columns, each hashed, rows sorted by their
hashes; the shards' ``stemforge.*`` metadata; each case's exit code; and the rejected inputs' (track key, stage,
reason). Not compared: run manifests, message wording, timestamps.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import soundfile as sf

sys.path.append(str(Path(__file__).resolve().parent))
from corpus_cases import CASES, write_inputs  # noqa: E402

AUDIO_BYTES_RULE = {".wav": "bytes", ".flac": "bytes", ".ogg": "samples"}
VOLATILE_METADATA = ("started", "created", "timestamp", "written_at")


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:20]


def make(folder: Path) -> int:
    """Write the inputs, then run every case with the tree first on PYTHONPATH; return how many cases failed."""
    folder.mkdir(parents=True, exist_ok=True)
    write_inputs(folder)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    failed = 0
    for name, argv in CASES.items():
        cmd = [sys.executable, "-m", "stemforge", *[a.format(name=name) for a in argv]]
        done = subprocess.run(cmd, cwd=folder, env=env, capture_output=True, text=True, timeout=900)
        (folder / "out").mkdir(exist_ok=True)
        (folder / "out" / f"{name}.rc").write_text(f"{done.returncode}\n")
        (folder / "out" / f"{name}.log").write_text(done.stdout + done.stderr)
        print(f"{name}: exit {done.returncode}", flush=True)
        failed += done.returncode != 0
    return failed


def _stem(path: Path) -> dict[str, str]:
    samples, rate = sf.read(path, dtype="float64" if path.suffix != ".ogg" else "float32", always_2d=True)
    info = sf.info(str(path))
    return {"rule": AUDIO_BYTES_RULE.get(path.suffix, "samples"), "bytes": _sha(path.read_bytes()),
            "samples": _sha(np.ascontiguousarray(samples).tobytes() + f"{rate}/{info.subtype}".encode())}


def _input(path: Path) -> str:
    """An input's hash: a readable WAV's decoded samples (libsndfile stamps each new WAV's header with the time
    it was written), else its bytes (the corrupt inputs, checkpoints, configs, manifests)."""
    if path.suffix == ".wav":
        try:
            return _stem(path)["samples"]
        except sf.LibsndfileError:
            pass
    return _sha(path.read_bytes())


def _cell_hashes(column: pa.ChunkedArray, root: str) -> list[str]:
    """One hash per row: a fixed-size list's leaf values as bytes, anything else as its exact repr with the
    corpus folder's path written ROOT (sources are absolute paths)."""
    array = column.combine_chunks()
    if pa.types.is_fixed_size_list(array.type) and array.null_count == 0:
        leaf = array
        while pa.types.is_fixed_size_list(leaf.type):
            leaf = leaf.flatten()
        values = leaf.to_numpy(zero_copy_only=False).reshape(len(array), -1)
        return [_sha(str(values.dtype).encode() + row.tobytes()) for row in values]
    return [_sha(repr(value).replace(root, "ROOT").encode()) for value in array.to_pylist()]


def _rows(paths: list[Path], root: str) -> tuple[list[dict[str, str]], dict[str, Any]]:
    rows: list[dict[str, str]] = []
    metadata: dict[str, Any] = {}
    for path in paths:
        table = pq.read_table(path)
        hashed = {name: _cell_hashes(table.column(name), root) for name in table.column_names}
        hashed["_types"] = [_sha(str(table.schema).encode())] * table.num_rows
        rows += [{name: cells[i] for name, cells in hashed.items()} for i in range(table.num_rows)]
        for key, value in (table.schema.metadata or {}).items():
            name = key.decode()
            if name.startswith("stemforge.") and not any(v in name for v in VOLATILE_METADATA):
                text = value.decode(errors="replace").replace(root, "ROOT")
                metadata.setdefault(name, set()).add(_sha(text.encode()))
    return sorted(rows, key=lambda r: json.dumps(r, sort_keys=True)), {k: sorted(v) for k, v in metadata.items()}


def _errors(out: Path) -> list[list[str]]:
    records = []
    for path in sorted(out.glob("errors/*.jsonl")):
        for line in path.read_text().splitlines():
            record = json.loads(line)
            records.append([str(record.get("track_key")), str(record.get("stage")), str(record.get("error"))])
    return sorted(records)


def digest(folder: Path) -> dict[str, Any]:
    """The comparable content of a ``make`` folder: inputs, and per case its exit code, stems, rows, errors."""
    inputs = {str(p.relative_to(folder)): _input(p)
              for p in sorted(folder.rglob("*")) if p.is_file() and "out" not in p.relative_to(folder).parts}
    cases = {}
    for name in CASES:
        out = folder / "out" / name
        rc_file = folder / "out" / f"{name}.rc"
        files = sorted(p for p in out.rglob("*") if p.is_file()) if out.exists() else []
        stems = {str(p.relative_to(out)): _stem(p) for p in files
                 if p.suffix in AUDIO_BYTES_RULE and "runs" not in p.relative_to(out).parts}
        shards = [p for p in files if p.suffix == ".parquet" and not {"runs", "errors"} & set(p.relative_to(out).parts)]
        rows, metadata = _rows(shards, str(folder))
        cases[name] = {"rc": rc_file.read_text().strip() if rc_file.exists() else "missing",
                       "stems": stems, "rows": rows, "metadata": metadata, "errors": _errors(out)}
    return {"inputs": inputs, "cases": cases}


def _stem_differences(case: str, old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    lines = []
    for path in sorted(set(old) | set(new)):
        if path not in old or path not in new:
            lines.append(f"{case}: stem {path} only in {'new' if path in new else 'old'}")
            continue
        for field in ("samples", "bytes") if old[path]["rule"] == "bytes" else ("samples",):
            if old[path][field] != new[path][field]:
                lines.append(f"{case}: stem {path}: {field} differ")
    return lines


def _row_differences(case: str, old: list[dict[str, str]], new: list[dict[str, str]]) -> list[str]:
    if len(old) != len(new):
        return [f"{case}: {len(old)} rows before, {len(new)} now"]
    lines = []
    for index, (a, b) in enumerate(zip(old, new)):
        differing = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
        if differing:
            lines.append(f"{case}: row {index} (sorted): columns differ: {', '.join(differing)}")
    return lines


def compare(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Every difference between two digests, one line each (empty: identical)."""
    lines = [f"input {k} differs (not the same corpus)" for k in sorted(set(old["inputs"]) | set(new["inputs"]))
             if old["inputs"].get(k) != new["inputs"].get(k)]
    for case in sorted(set(old["cases"]) | set(new["cases"])):
        a, b = old["cases"].get(case), new["cases"].get(case)
        if a is None or b is None:
            lines.append(f"{case}: case only in {'new' if a is None else 'old'}")
            continue
        lines += [f"{case}: {key}: {a[key]} before, {b[key]} now" for key in ("rc", "errors") if a[key] != b[key]]
        lines += _stem_differences(case, a["stems"], b["stems"]) + _row_differences(case, a["rows"], b["rows"])
        lines += [f"{case}: shard metadata {k} differs" for k in sorted(set(a["metadata"]) | set(b["metadata"]))
                  if a["metadata"].get(k) != b["metadata"].get(k)]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("make", help="write the corpus's outputs into DIR").add_argument("folder", type=Path)
    digest_p = commands.add_parser("digest", help="write DIR's digest as JSON")
    digest_p.add_argument("folder", type=Path)
    digest_p.add_argument("-o", "--output", type=Path, required=True)
    compare_p = commands.add_parser("compare", help="compare two digests; exit 1 on any difference")
    compare_p.add_argument("old", type=Path)
    compare_p.add_argument("new", type=Path)
    args = parser.parse_args(argv)
    if args.command == "make":
        failed = make(args.folder.resolve())
        return 1 if failed == len(CASES) else 0
    if args.command == "digest":
        args.output.write_text(json.dumps(digest(args.folder.resolve()), indent=1, sort_keys=True) + "\n")
        return 0
    differences = compare(json.loads(args.old.read_text()), json.loads(args.new.read_text()))
    print("\n".join(differences) if differences else "identical: every stem, row and error record matches")
    return 1 if differences else 0


if __name__ == "__main__":
    sys.exit(main())
