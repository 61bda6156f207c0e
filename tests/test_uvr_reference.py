"""The UVR reference (audio-separator) may be missing on a laptop, never in CI: there the equivalence tests fail."""

from __future__ import annotations

import pytest
import uvr_reference


def _missing() -> dict:
    raise ImportError("audio-separator is not installed (make venv installs it with --no-deps)")


@pytest.mark.parametrize("ci, outcome", [("true", pytest.fail.Exception), ("1", pytest.fail.Exception),
                                         ("", pytest.skip.Exception), ("false", pytest.skip.Exception)])
def test_a_missing_reference_fails_in_ci_and_skips_elsewhere(monkeypatch, ci, outcome):
    monkeypatch.setenv("CI", ci)
    monkeypatch.setattr(uvr_reference, "uvr", _missing)
    with pytest.raises(outcome) as stopped:
        uvr_reference.uvr_or_skip()
    expected = "audio-separator is not installed (make venv installs it with --no-deps)"
    if outcome is pytest.fail.Exception:
        expected += "; in CI the UVR reference is required: the equivalence tests may not skip"
    assert stopped.value.msg == expected
