"""Reading a config: YAML text or plain data plus ``dotted.key=value`` overrides, validated against a pydantic
schema, every problem said in one line. Generic over the schema: a run's Config (``stemforge.config.run``) and
`stemforge train`'s TrainConfig (``training.config``) are read by the same rules."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from stemforge.config.yamlfile import YamlError, parse_yaml


class ConfigError(ValueError):
    """A config that cannot run; the message names the key path and what is allowed."""


class Section(BaseModel):
    """The base of every config section and schema read here: frozen, unknown keys refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _set_dotted(data: dict[str, Any], dotted: str, value: Any) -> None:
    node = data
    parts = dotted.split(".")
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"{dotted}: '{part}' is not a section")
        node = child
    node[parts[-1]] = value


def _format_validation_error(exc: ValidationError) -> str:
    first = exc.errors()[0]
    path = ".".join(str(p) for p in first["loc"]) or "(top level)"
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        message = "unknown key"
    elif first["type"] == "literal_error":
        message = f"must be one of {first['ctx']['expected']}"
    more = f" (and {len(exc.errors()) - 1} more problems)" if len(exc.errors()) > 1 else ""
    return f"{path}: {message}{more}"


def _is_text_field(dotted: str, schema: type[BaseModel]) -> bool:
    """Whether the dotted key names a field of type ``str`` or ``str | None`` in the schema."""
    section: type[BaseModel] | None = schema
    annotation: Any = None
    for part in dotted.split("."):
        field = section.model_fields.get(part) if section is not None else None
        if field is None:
            return False
        annotation = field.annotation
        section = annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
    return annotation in (str, str | None)


def build_config(data: dict[str, Any], overrides: list[str] | None, schema: type[Any]) -> Any:
    """Validate plain data plus ``dotted.key=value`` overrides (values parsed as YAML) against ``schema``
    (a run's Config by default; `stemforge train` uses the same rules for its TrainConfig)."""
    data = json.loads(json.dumps(data or {}))
    for item in overrides or []:
        key, equals, raw = item.partition("=")
        if not equals or not all(part.strip() for part in key.split(".")):
            raise ConfigError(f"--set {item!r}: malformed override, expected dotted.key=value")
        text = _is_text_field(key.strip(), schema)
        try:
            value = parse_yaml(raw, "--set")
        except YamlError as exc:
            if not text:
                raise ConfigError(f"--set {item!r}: the value is not valid YAML ({exc.reason})") from None
            value = raw  # output.stem_path={track_key}/{stem}.{ext} is a template, not a YAML mapping
        if value is not None and not isinstance(value, str) and text:
            value = raw  # run.run_id=20261124 is the text "20261124", not the YAML integer
        _set_dotted(data, key.strip(), value)
    try:
        return schema.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(exc)) from None


def load_config(path: str | Path, overrides: list[str] | None, schema: type[Any]) -> Any:
    """Read a YAML config file and validate it against ``schema`` with overrides applied."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config ({exc.strerror or exc})") from None
    try:
        data = parse_yaml(text, str(path)) or {}
    except YamlError as exc:
        raise ConfigError(str(exc)) from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping")
    return build_config(data, overrides, schema)
