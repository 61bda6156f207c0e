"""The package's shape, read from the sources: every first-party import goes through the ``stemforge``
namespace (nothing of ours is importable as a top-level ``model`` or ``pipeline`` once installed), and the
packages depend on each other in one direction only (pipeline → training → model → transforms)."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FOLDERS = ("pipeline", "transforms", "model", "shards", "training")
CODE = (*FOLDERS, "stemforge", "tests", "benchmarks", "scripts", "docs")
# what each part may import from the others; anything else is an edge the wrong way (or a cycle). "config" is
# stemforge.config (the schema, below every package that runs), "stemforge" the root's own modules
ALLOWED = {
    "transforms": set(),
    "shards": set(),
    "config": {"transforms", "shards"},
    "model": {"transforms"},
    "training": {"stemforge", "config", "model", "shards", "transforms"},
    "pipeline": {"stemforge", "config", "model", "shards", "training", "transforms"},
    "stemforge": {"pipeline"},  # its __main__ runs the command line
}


def _part(module: str) -> str | None:
    """Which part of ``ALLOWED`` a ``stemforge.*`` module belongs to (None: not ours)."""
    parts = module.split(".")
    if parts[0] != "stemforge" or len(parts) == 1:
        return None
    return parts[1] if parts[1] in ALLOWED else "stemforge"


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) for every absolute import in ``path``, ``from x import y`` also giving ``x.y``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found += [(node.lineno, node.module), *((node.lineno, f"{node.module}.{a.name}") for a in node.names)]
        elif isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
    return found


def _sources(*folders: str) -> list[Path]:
    return [path for folder in folders for path in sorted((REPO / folder).rglob("*.py"))
            if "__pycache__" not in path.parts]


def test_first_party_imports_use_the_stemforge_namespace():
    old_style = [f"{path.relative_to(REPO)}:{line}: {module}" for path in _sources(*CODE)
                 for line, module in _imports(path) if module.split(".")[0] in FOLDERS]
    assert old_style == []


def test_packages_import_each_other_in_one_direction():
    edges: dict[str, set[str]] = defaultdict(set)
    for path in _sources(*FOLDERS, "stemforge"):
        relative = path.relative_to(REPO)
        package = _part("stemforge." + ".".join(relative.parts[1:] if relative.parts[0] == "stemforge"
                                                else relative.parts))
        edges[package] |= {target for _, module in _imports(path)
                           if (target := _part(module)) is not None and target != package}
    assert set(edges) == set(ALLOWED)  # every part was scanned
    wrong = {package: sorted(targets - ALLOWED[package]) for package, targets in edges.items()
             if targets - ALLOWED[package]}
    assert wrong == {}


def test_the_layout_check_sees_a_wrong_edge(tmp_path):
    """The scan itself: a module that imports upwards is found (so the check above can fail)."""
    bad = tmp_path / "bad.py"
    bad.write_text("import os\nfrom stemforge.config.run import Config\nfrom model import nets\n")
    assert _imports(bad) == [(1, "os"), (2, "stemforge.config.run"), (2, "stemforge.config.run.Config"),
                             (3, "model"), (3, "model.nets")]


# what the Beam-free engine may use of the rest of pipeline/: its storage and scratch helpers, which import no Beam
ENGINE_USES = {"stemforge.pipeline.engine", "stemforge.pipeline.storage", "stemforge.pipeline.scratch"}


def test_the_engine_uses_only_beam_free_parts_of_the_pipeline():
    used = {f"{path.relative_to(REPO)}:{line}: {module}" for path in _sources("pipeline/engine")
            for line, module in _imports(path) if module.startswith("stemforge.pipeline.")
            and not any(module == allowed or module.startswith(allowed + ".") for allowed in ENGINE_USES)}
    assert _sources("pipeline/engine") and used == set()
    for helper in ("storage", "scratch"):
        assert not [m for _, m in _imports(REPO / "pipeline" / f"{helper}.py")
                    if m.startswith("stemforge.pipeline.") or m.startswith("apache_beam")]
