"""The one model stemforge ships: a small CascadedNet that separates a voice from music, trained by
stemforge on stemforge's own synthetic data (`make demo-model`; model/weights/README.md has its card).

It proves that the whole loop works (synthesise stems → mix run → train → separate) and gives `make demo`
and `stemforge separate` real stems to listen to. It is not a replacement for real separation weights: it has
heard only espeak-ng voices over synthesised music, at a quarter of vocal-remover's width, and on held-out
real voices it improves the vocals by 2.8 dB on average but makes some mixtures worse (the card's figures).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

WEIGHTS = Path(__file__).resolve().parent / "weights"


@dataclass(frozen=True)
class ShippedModel:
    """A checkpoint in the package, with the settings it was trained with and its sha256 (verified on load)."""

    name: str
    sha256: str
    n_fft: int
    hop_length: int
    stems: tuple[str, str]

    @property
    def path(self) -> Path:
        return WEIGHTS / f"{self.name}.safetensors"

    def config_overrides(self) -> dict[str, object]:
        """The ``model`` config keys that run it."""
        return {"checkpoint": str(self.path), "sha256": self.sha256, "n_fft": self.n_fft,
                "hop_length": self.hop_length, "stems": list(self.stems)}


VOICE_MUSIC = ShippedModel("voice-music-1024", "7a7e45af9247b6114d2c6740f856d45b4db150ab43e2e632a6a6168526babce3", 1024, 512,
                          ("instruments", "vocals"))
SHIPPED = (VOICE_MUSIC,)


def shipped_model(sha256: str) -> ShippedModel | None:
    """The shipped model whose checkpoint bytes have this sha256 (None: not one of ours), so that one given
    as a plain checkpoint path runs at its own geometry."""
    return next((model for model in SHIPPED if model.sha256 == sha256.strip().lower()), None)
