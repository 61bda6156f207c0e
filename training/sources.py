"""Recorded sources for stem sets: real voices and recorded music from Debian packages, split by speaker and
by package into a training and a held-out side, each file with its package's licence.

Voices: ``klettres-data`` (letters and syllables spoken by native speakers, one folder per language: the
speaker split is by language) and ``fillets-ng-data`` (the English dialogue of the game, training only).
Music: game soundtracks; ``wesnoth-1.16-music``, ``colobot-common-sounds`` and ``fillets-ng-data`` train,
``hedgewars-data`` and ``warzone2100-music`` are held out. ``drascula-music`` and ``alsa-utils`` are reserved
for an independent evaluation and never listed here.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

Split = Literal["train", "heldout"]
DOC = Path("/usr/share/doc")
KLETTRES = Path("/usr/share/klettres")
KLETTRES_HELDOUT = ("en_GB", "fr", "it", "ru", "he")  # five speakers never trained on
MUSIC: dict[Split, dict[str, tuple[str, ...]]] = {
    "train": {
        "wesnoth-1.16-music": ("/usr/share/games/wesnoth/1.16/data/core/music",),
        "colobot-common-sounds": ("/usr/share/games/colobot/music",),
        "fillets-ng-data": ("/usr/share/games/fillets-ng/music",),
    },
    "heldout": {
        "hedgewars-data": ("/usr/share/games/hedgewars/Data/Music",),
        "warzone2100-music": ("/usr/share/games/warzone2100/music",),
    },
}
FILLETS_VOICES = "/usr/share/games/fillets-ng/sound"
EXTENSIONS = (".ogg", ".opus", ".flac", ".wav", ".mp3")


@dataclass(frozen=True)
class Source:
    """One recorded file: its path, the package it comes from, and who speaks (voices) or ``""`` (music)."""

    path: str
    package: str
    speaker: str = ""


@dataclass(frozen=True)
class Licence:
    """A package's licence as its Debian copyright file states it."""

    package: str
    copyright_file: str
    sha256: str
    licences: tuple[str, ...]  # every ``License:`` name the file declares, in order of first use


def _files(folder: str | Path) -> list[Path]:
    root = Path(folder)
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in EXTENSIONS and p.is_file()) if root.is_dir() else []


@dataclass(frozen=True)
class Catalogue:
    """Where the sources are: Debian's install paths by default (tests point it at audio they make)."""

    klettres: Path = KLETTRES
    fillets: Path = Path(FILLETS_VOICES)
    music_folders: dict[Split, dict[str, tuple[str, ...]]] = field(default_factory=lambda: MUSIC)
    doc: Path = DOC

    def voices(self, split: Split) -> list[Source]:
        """The real voice recordings on ``split``'s side: klettres speakers by language, fillets-ng for training."""
        out = []
        if self.klettres.is_dir():
            for language in sorted(p.name for p in self.klettres.iterdir() if p.is_dir()):
                if (language in KLETTRES_HELDOUT) == (split == "heldout"):
                    out += [Source(str(p), "klettres-data", f"klettres/{language}")
                            for p in _files(self.klettres / language)]
        if split == "train":
            out += [Source(str(p), "fillets-ng-data", "fillets-ng/en") for p in _files(self.fillets)
                    if p.parent.name == "en"]
        return out

    def music(self, split: Split) -> list[Source]:
        """The recorded music files on ``split``'s side (instrumental game soundtracks), by package."""
        return [Source(str(p), package) for package, roots in self.music_folders[split].items() for root in roots
                for p in _files(root)]

    def licence(self, package: str) -> Licence:
        """``package``'s Debian copyright file, its sha256 and the licence names it declares (DEP-5
        ``License:`` fields, else names found in the free text); ``FileNotFoundError`` names the file if absent."""
        path = self.doc / package / "copyright"
        text = path.read_text(encoding="utf-8", errors="replace")
        names = [m.strip() for m in re.findall(r"^License:[ \t]*(\S[^\n]*)$", text, flags=re.M)]
        if not names:
            names = re.findall(r"\b(GPL-?\d\+?|GNU General Public License(?: version \d)?|CC[- ]BY[- ]SA[- ]?[\d.]*|"
                               r"Creative Commons[^\n,.]*|public domain|BSD[-\w]*|Apache-2\.0|MIT)\b", text, flags=re.I)
        unique = tuple(dict.fromkeys(names)) or ("(see the copyright file)",)
        return Licence(package, str(path), hashlib.sha256(path.read_bytes()).hexdigest(), unique)

    def missing_packages(self, split: Split) -> list[str]:
        """Packages ``split`` draws from whose files are not installed (said before any work)."""
        voices = self.voices(split)
        absent = {"klettres-data"} - {s.package for s in voices}
        if split == "train" and "fillets-ng-data" not in {s.package for s in voices}:
            absent.add("fillets-ng-data")
        present = {s.package for s in self.music(split)}
        return sorted(absent | {p for p in self.music_folders[split] if p not in present})


DEBIAN = Catalogue()
