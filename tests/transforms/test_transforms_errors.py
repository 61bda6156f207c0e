"""AudioError, the one scrubber (transforms.redaction) on real credential-bearing URLs, and the one decision of
what is transient (transforms.errors.is_transient), by class, errno and service code."""

from __future__ import annotations

import errno
import http.client

import pytest

from stemforge.transforms import REASONS, AudioError
from stemforge.transforms.errors import is_transient
from stemforge.transforms.redaction import redact_uri, scrub

SIGNED = ("https://bucket.s3.amazonaws.com/in/a.wav?X-Amz-Algorithm=AWS4-HMAC-SHA256"
          "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20261205%2Fus-east-1%2Fs3%2Faws4_request"
          "&X-Amz-Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7")


def test_reason_codes_are_validated_and_message_names_file_and_reason():
    error = AudioError("s3://bucket/a.flac", "truncated", "stream ends early")
    assert isinstance(error, ValueError)
    assert str(error) == "s3://bucket/a.flac: truncated: stream ends early"
    assert {"unreadable", "truncated", "empty", "non_finite", "is_directory", "not_found",
            "too_many_channels"} <= REASONS
    with pytest.raises(ValueError):
        AudioError("x", "bad_reason", "")


def test_one_rule_for_urls_userinfo_query_and_fragment_are_masked_host_and_path_kept():
    assert redact_uri("https://alice:s3cret@host/a.wav") == "https://***@host/a.wav"
    assert redact_uri(SIGNED) == "https://bucket.s3.amazonaws.com/in/a.wav?***"
    assert redact_uri("az://container/x.wav#sig=abcd") == "az://container/x.wav#***"
    assert redact_uri("/local/what?.wav") == "/local/what?.wav"  # a plain path is not a URL
    assert str(AudioError(SIGNED, "not_found", "gone")) == "https://bucket.s3.amazonaws.com/in/a.wav?***: not_found: gone"
    assert "s3cret" not in str(AudioError("https://alice:s3cret@host/a.wav", "not_found", "gone"))


def test_scrub_masks_urls_storage_options_environment_and_echoed_uri_parts(monkeypatch):
    options = {"s3": {"key": "AKIAEXAMPLEKEY", "secret": "wJalrXUtnFEMI/K7MDENG", "port": 123456,
                      "client_kwargs": {"headers": ["Bearer tok-123456"]}}}
    monkeypatch.setenv("AWS_SESSION_TOKEN", "FwoGZXIvYXdzEXAMPLE")
    text = (f"GET {SIGNED} failed; ftp://bob:hunter22@files.example/x.wav refused; key AKIAEXAMPLEKEY secret "
            "wJalrXUtnFEMI/K7MDENG, Bearer tok-123456, port 123456, session FwoGZXIvYXdzEXAMPLE; "
            "echoed as bucket/in/a.wav?X-Amz-Signature=deadbeefcafe and bob:hunter22@files.example")
    uris = ("s3://bucket/in/a.wav?X-Amz-Signature=deadbeefcafe", "ftp://bob:hunter22@files.example/x.wav")
    assert scrub(text, options, uris) == (
        "GET https://bucket.s3.amazonaws.com/in/a.wav?*** failed; ftp://***@files.example/x.wav refused; key *** "
        "secret ***, ***, port ***, session ***; echoed as bucket/in/a.wav?*** and ***@files.example")


@pytest.mark.parametrize("error, transient", [
    (ConnectionResetError(errno.ECONNRESET, "reset"), True),
    (TimeoutError("timed out"), True),
    (OSError(errno.EBUSY, "SlowDown"), True),  # s3fs's translation of S3's SlowDown
    (http.client.IncompleteRead(b"partial"), True),
    (FileNotFoundError(errno.ENOENT, "no such key"), False),
    (PermissionError(errno.EACCES, "denied"), False),
    (OSError(errno.EINVAL, "bad request"), False),
    (RuntimeError("Connection timed out"), False),  # the words in a message decide nothing
    (AudioError("s3://b/k.wav", "io_error", "cannot open (RuntimeError: Timeout)"), False),
    (AudioError("s3://b/k.wav", "io_error", "cannot open", transient=True), True),
    (AudioError("s3://b/k.wav", "truncated", "stream ends early", transient=True), False),  # bad audio never is
])
def test_transient_is_decided_by_class_errno_and_attribute_never_by_message(error, transient):
    assert is_transient(error) is transient


def test_a_cause_behind_a_wrapper_decides_and_botocore_codes_are_read():
    botocore = pytest.importorskip("botocore.exceptions")

    def client_error(code: str, status: int) -> Exception:
        return botocore.ClientError({"Error": {"Code": code, "Message": "m"},
                                     "ResponseMetadata": {"HTTPStatusCode": status}}, "GetObject")

    assert is_transient(client_error("SlowDown", 503)) and is_transient(client_error("Weird", 500))
    assert not is_transient(client_error("InvalidAccessKeyId", 403))
    wrapped = OSError(errno.EIO, "translated by s3fs")  # s3fs's fallback for codes it does not know
    wrapped.__cause__ = client_error("InvalidObjectState", 403)
    assert not is_transient(wrapped)
    assert is_transient(botocore.EndpointConnectionError(endpoint_url="http://127.0.0.1:1"))
    assert not is_transient(botocore.NoCredentialsError())


def test_real_failures_on_signed_and_credentialed_urls_name_the_file_without_its_credentials():
    """Audio, a band table and a checkpoint, each read from a signed URL and a user:password URL on a port where
    nothing listens, with a key and secret in storage_options: every message names the host and path and holds
    none of the credentials (userinfo, X-Amz-Signature, the storage option values)."""
    import socket

    from stemforge.model import CheckpointError, load_checkpoint
    from stemforge.transforms import BandParamsError, load_audio, load_band_params

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    options = {"client_kwargs": {"headers": {"Authorization": "Bearer tok-SECRET-123"}}}
    credentials = ("X-Amz-Signature", "5d672d79c15b", "AKIAIOSFODNN7EXAMPLE", "alice", "hunter22", "tok-SECRET-123")
    for base in (f"http://127.0.0.1:{port}", f"http://alice:hunter22@127.0.0.1:{port}"):
        signed = f"{base}/in/a.wav?{SIGNED.split('?')[1]}"
        messages = []
        for read, error in ((lambda: load_audio(signed, options), AudioError),
                            (lambda: load_band_params(signed.replace("a.wav", "t.json"), options), BandParamsError),
                            (lambda: load_checkpoint(signed.replace("a.wav", "m.pth"), n_fft=256, device="cpu",
                                                     storage_options=options), CheckpointError)):
            with pytest.raises(error) as caught:
                read()
            messages.append(str(caught.value))
        assert all(f"127.0.0.1:{port}/in/" in m for m in messages), messages
        assert not [c for m in messages for c in credentials if c in m], messages
