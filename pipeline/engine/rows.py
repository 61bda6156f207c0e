"""The names of a run's stems and spectrogram columns: what the stem writer writes, the rows hold and the shard
schema declares, decided here once from the config."""

from __future__ import annotations

from stemforge.config.run import Config


def model_columns(config: Config) -> tuple[str, ...]:
    """The columns of the model's two predicted stems: its stem names, or ``teacher_{stem}`` in a mix run
    (where the stem names hold the ground truth); none when a mix run has no model."""
    if not config.runs_model:
        return ()
    prefix = "teacher_" if config.mix is not None else ""
    return tuple(prefix + stem for stem in config.model.stems)


def audio_stems(config: Config) -> list[str]:
    """The stem names of a run's audio files: the model's two, or a mix run's mixture and targets."""
    return ["mixture", *config.mix.targets] if config.mix is not None else list(config.model.stems)


def tensor_columns(config: Config) -> list[str]:
    """The spectrogram columns, in order: mixture, a mix run's targets, the model's two stems (``teacher_``
    ones in a mix run), and clean when kept."""
    targets = list(config.mix.targets) if config.mix is not None else []
    return ["mixture", *targets, *model_columns(config), *(["clean"] if config.augment.keep_clean else [])]
