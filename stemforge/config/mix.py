"""The ``mix`` section of a run's config (``stemforge.config.run``): mixtures made from stem sets."""

from __future__ import annotations

from pydantic import Field, field_validator

from stemforge.config.loader import Section


class MixConfig(Section):
    """Mixtures made from a stem set (``input.uri`` names stem-set manifests or ``{track}/{stem}`` folders)."""

    stems: tuple[str, ...] | dict[str, tuple[str, ...]]
    gain_db: tuple[float, float] = (0.0, 0.0)
    remix_p: float = Field(0.0, ge=0, le=1)
    drop_p: float = Field(0.0, ge=0, lt=1)
    max_length_difference_seconds: float = Field(0.1, ge=0)

    @field_validator("stems")
    @classmethod
    def _names(cls, value: tuple[str, ...] | dict[str, tuple[str, ...]]) -> tuple[str, ...] | dict[str, tuple[str, ...]]:
        names = list(value)
        if not names or len(set(names)) != len(names) or not all(n.isidentifier() for n in names):
            raise ValueError("name one or more distinct identifier-like target columns")
        reserved = [n for n in names if n in ("mixture", "clean") or n.startswith("teacher_")]
        if reserved:
            raise ValueError(f"'{reserved[0]}' is a reserved column name (mixture, clean, teacher_*)")
        if isinstance(value, dict) and not all(value.values()):
            raise ValueError("every target must list at least one stem-set stem")
        return value

    @field_validator("gain_db")
    @classmethod
    def _ordered(cls, value: tuple[float, float]) -> tuple[float, float]:
        if value[0] > value[1]:
            raise ValueError("gain_db is [low, high] with low <= high")
        return value

    @property
    def targets(self) -> dict[str, tuple[str, ...]]:
        """Each target column and the stem-set stems summed into it (a list of names maps each to itself)."""
        if isinstance(self.stems, dict):
            return {k: tuple(v) for k, v in self.stems.items()}
        return {name: (name,) for name in self.stems}

    @property
    def sources(self) -> tuple[str, ...]:
        """Every stem-set stem a track needs."""
        return tuple(dict.fromkeys(s for group in self.targets.values() for s in group))
