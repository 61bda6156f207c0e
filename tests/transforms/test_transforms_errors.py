"""AudioError and the scrubbing of secrets from messages."""

from __future__ import annotations

import pytest

from transforms import REASONS, AudioError
from transforms.errors import redact_uri, scrub


def test_reason_codes_are_validated_and_message_names_file_and_reason():
    error = AudioError("s3://bucket/a.flac", "truncated", "stream ends early")
    assert isinstance(error, ValueError)
    assert str(error) == "s3://bucket/a.flac: truncated: stream ends early"
    assert {"unreadable", "truncated", "empty", "non_finite", "is_directory", "not_found",
            "too_many_channels"} <= REASONS
    with pytest.raises(ValueError):
        AudioError("x", "bad_reason", "")


def test_uri_credentials_are_redacted():
    assert redact_uri("https://alice:s3cret@host/a.wav") == "https://***@host/a.wav"
    assert "s3cret" not in str(AudioError("https://alice:s3cret@host/a.wav", "not_found", "gone"))


def test_scrub_masks_nested_storage_option_values():
    options = {"key": "AKIAEXAMPLEKEY", "client_kwargs": {"headers": ["Bearer tok-123456"]}, "port": 123456}
    text = "failed with AKIAEXAMPLEKEY and Bearer tok-123456 on port 123456"
    cleaned = scrub(text, options)
    assert "AKIAEXAMPLEKEY" not in cleaned and "tok-123456" not in cleaned and "123456" not in cleaned
