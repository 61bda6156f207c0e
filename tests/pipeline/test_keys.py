"""Which source holds which key, and what a rerun skips: the committed history decides (pipeline.keys)."""

import hashlib

from pipeline.keys import assign_keys, holdings, is_committed, key_index, one_per_source
from pipeline.listing import TrackRef

FINGERPRINT = "f" * 16


def _suffixed(key: str, source: str) -> str:
    return f"{key}~{hashlib.sha256(source.encode()).hexdigest()[:8]}"


def _manifest(run_id: str, sources: list[dict] | None, fingerprint: str = FINGERPRINT, tracks=None) -> dict:
    manifest = {"run_id": run_id, "started_at": f"2026-12-0{run_id[-1]}T00:00:00Z", "fingerprint": fingerprint,
                "status": "committed", "tracks": tracks if tracks is not None else [s["track_key"] for s in sources]}
    if sources is not None:
        manifest["sources"] = sources
    return manifest


def _index(*manifests: dict) -> dict:
    return key_index(h for m in manifests for h in holdings(m, FINGERPRINT))


WAV, FLAC = TrackRef("/d/a.wav", "a", 10, "mtime:1.0"), TrackRef("/d/a.flac", "a", 20, "mtime:2.0")


def test_without_history_the_first_source_sorted_keeps_the_key_in_any_order():
    out = assign_keys([WAV, FLAC], {})
    assert out == [FLAC, TrackRef("/d/a.wav", _suffixed("a", "/d/a.wav"), 10, "mtime:1.0")]
    assert assign_keys([FLAC, WAV], {}) == out


def test_a_committed_holder_keeps_its_key_and_a_newcomer_gets_the_suffix():
    index = _index(_manifest("run1", [{"track_key": "a", "source": "/d/a.wav", "size": 10, "version": "mtime:1.0"}]))
    out = assign_keys([FLAC, WAV], index)
    assert out == [TrackRef("/d/a.flac", _suffixed("a", "/d/a.flac"), 20, "mtime:2.0"), WAV]
    # the holder gone from the listing: its key stays its own
    assert assign_keys([FLAC], index) == [TrackRef("/d/a.flac", _suffixed("a", "/d/a.flac"), 20, "mtime:2.0")]


def test_the_earliest_run_decides_the_holder_whatever_the_reading_order():
    early = _manifest("run1", [{"track_key": "a", "source": "/d/a.wav", "size": 10, "version": "mtime:1.0"}])
    late = _manifest("run2", [{"track_key": "a", "source": "/d/a.flac", "size": 20, "version": "mtime:2.0"}])
    assert assign_keys([FLAC, WAV], _index(late, early))[1] == WAV


def test_a_source_listed_under_two_keys_keeps_the_one_it_holds():
    inner, outer = TrackRef("/d/sub/x.wav", "x"), TrackRef("/d/sub/x.wav", "sub/x")
    assert one_per_source([inner, outer], {}) == outer  # no history: the smallest key
    index = _index(_manifest("run1", [{"track_key": "x", "source": "/d/sub/x.wav", "size": 1, "version": None}]))
    assert one_per_source([outer, inner], index) == inner


def test_a_rerun_skips_the_same_source_with_the_same_content_and_this_fingerprint_only():
    record = {"track_key": "a", "source": "/d/a.wav", "size": 10, "version": "mtime:1.0"}
    index = _index(_manifest("run1", [record]))
    assert is_committed(WAV, index)
    assert not is_committed(TrackRef("/d/a.wav", "a", 11, "mtime:1.0"), index)  # size changed
    assert not is_committed(TrackRef("/d/a.wav", "a", 10, "mtime:3.0"), index)  # rewritten
    assert not is_committed(TrackRef("/d/a.flac", "a", 10, "mtime:1.0"), index)  # another source
    assert is_committed(TrackRef("/d/a.wav", "a"), index)  # content unknown (an unreadable entry): by source
    assert not is_committed(WAV, _index(_manifest("run1", [record], fingerprint="other")))


def test_a_manifest_that_records_only_keys_still_skips_by_key():
    index = _index(_manifest("run1", None, tracks=["a"]))
    assert is_committed(FLAC, index) and is_committed(WAV, index)
    assert assign_keys([WAV, FLAC], index)[0] == FLAC  # it names no holder: the rule without history
