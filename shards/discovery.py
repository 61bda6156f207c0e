"""Which shards belong to the dataset: exactly those that a committed run manifest (OUTPUT/runs/*.json) lists.
A shard no manifest lists (a killed run's, a retried bundle's leftover) is never read."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from stemforge.shards.manifest import committed_runs
from stemforge.shards.paths import PathEscape, join


def _roots(roots: str | Sequence[str]) -> list[str]:
    return [roots] if isinstance(roots, str) else list(roots)


def committed_manifests(root: str, storage_options: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The committed run manifests of one output root as JSON objects, oldest run first (``committed_runs``)."""
    return [run.raw for run in committed_runs(root, storage_options)]


def committed_shards(roots: str | Sequence[str], storage_options: dict[str, Any] | None = None) -> list[str]:
    """The URLs of every committed shard under one or more output roots, in a stable order.

    Raises FileNotFoundError naming a root that has no committed run, so a typo is not an empty dataset, and
    PathEscape naming the manifest whose shard list names a file outside its root (an edited manifest).
    """
    shards: list[str] = []
    for root in _roots(roots):
        runs = committed_runs(root, storage_options)
        if not runs:
            raise FileNotFoundError(f"{root}: no committed stemforge run (no runs/*.json with status committed)")
        for run in runs:
            shards += [listed_shard(root, run.raw, shard) for shard in run.shards]
    return shards


def listed_shard(root: str, manifest: dict[str, Any], shard: Any) -> str:
    """The URL of one entry of a run manifest's shard list, or PathEscape naming the manifest when the entry
    is not a path inside ``root``."""
    try:
        return join(root, shard if isinstance(shard, str) else "")
    except PathEscape as exc:
        raise PathEscape(f"{join(root, 'runs')}/{manifest.get('run_id')}.json lists a shard outside its output "
                         f"folder, {shard!r}: {exc.why}", exc.why) from None
