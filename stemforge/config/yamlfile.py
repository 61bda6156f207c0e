"""YAML as stemforge reads it: safe tags only, a key given twice in one mapping refused (YAML itself would
keep the last silently), and every problem said in one line as ``FILE:LINE:COLUMN: reason``."""

from __future__ import annotations

from typing import Any

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode


class YamlError(ValueError):
    """Text that is not valid YAML (or repeats a key); ``reason`` is the problem without its location."""

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(f"{where}: invalid YAML: {reason}")
        self.reason = reason


class _UniqueKeyLoader(yaml.SafeLoader):
    """yaml.SafeLoader that refuses a mapping holding the same key twice, naming both lines."""

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        first: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                seen = key in first
            except TypeError:  # an unhashable key: SafeLoader's own error says so
                continue
            if seen:
                raise ConstructorError(None, None, f"duplicate key {key!r} (first given on line {first[key] + 1})",
                                       key_node.start_mark)
            first[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep)


def parse_yaml(text: str, source: str) -> Any:
    """``text`` parsed; YamlError ``SOURCE:LINE:COLUMN: invalid YAML: reason`` (one line) when it is not."""
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark is not None else source
        reason = " ".join(part for part in (exc.problem, f"({exc.context})" if exc.context else None) if part)
        raise YamlError(where, " ".join(reason.split())) from None
    except yaml.YAMLError as exc:
        raise YamlError(source, " ".join(str(exc).split())) from None
