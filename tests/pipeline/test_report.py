"""`stemforge report`: one self-contained HTML page of a real run (3 tracks, 2 augmented variants, one broken
file), checked against the files the run wrote, for secrets, for bad input, and rendered in headless Chromium."""

import base64
import html
import io
import json
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile as sf
from PIL import Image
from scipy.signal import resample_poly
from stemforge_testing import read_manifest, write_config

from stemforge.pipeline.cli import main
from stemforge.pipeline.report import ReportError, build_report, write_report

SECRET = "Zq9SECRETvalue7x"  # a credential env value that also appears in the input folder's name
CHAIN = [{"transform": "ZeroPhaseBiquadLowPass", "cutoff_hz": 4000, "q": 0.7071, "jitter": [0.8, 1.2], "p": 1.0},
         {"transform": "Gain", "min_gain_db": -6, "max_gain_db": 6, "p": 1.0}]
STEMS = ("instruments", "vocals")


@pytest.fixture(scope="module")
def run(corpus, tiny_checkpoint, tmp_path_factory):
    """The run, made and reported while AWS_SECRET_ACCESS_KEY holds SECRET: (output, manifest, page)."""
    base = tmp_path_factory.mktemp("report")
    inputs, out = base / f"in-{SECRET}", base / "out"
    shutil.copytree(corpus[0], inputs)
    config = write_config(base / "c.yaml", augment={"variants": 2, "seed": 7, "chain": CHAIN})
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
        assert main(["run", "--config", str(config), "--input", str(inputs), "--output", str(out),
                     "--checkpoint", str(tiny_checkpoint)]) == 0
        assert write_report(str(out)) == str(out / "report.html")
    manifest = read_manifest(next((out / "runs").glob("*.json")))
    return out, manifest, (out / "report.html").read_text()


class _Tags(HTMLParser):
    def __init__(self, tag: str) -> None:
        super().__init__()
        self.tag, self.found = tag, []

    def handle_starttag(self, tag, attrs):
        if tag == self.tag:
            self.found.append(dict(attrs))


def _tags(page: str, tag: str) -> list[dict[str, str]]:
    parser = _Tags(tag)
    parser.feed(page)
    return parser.found


def _copy(out: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "out"
    shutil.copytree(out, copy)
    return copy


def _track_rows(out: Path, manifest: dict, key: str, variant: int) -> dict[str, np.ndarray]:
    """A track variant's spectrogram columns from the shards: channel mean, segments in order, padding cut."""
    table = pq.read_table([str(out / s) for s in manifest["shards"]]).to_pylist()
    rows = sorted((r for r in table if r["track_key"] == key and r["variant"] == variant), key=lambda r: r["segment"])
    return {name: np.concatenate([np.asarray(r[name], np.float32).reshape(2, 257, 100)[..., : r["num_frames"]]
                                  .mean(axis=0) for r in rows], axis=1) for name in ("mixture", *STEMS)}


def test_the_summary_errors_and_shards_are_the_runs(run):
    out, manifest, page = run
    counts = manifest["counts"]
    assert f'<section id="run-{manifest["run_id"]}"><h2>Run {manifest["run_id"]}</h2>' in page
    assert "".join(f'<td class="num">{counts[k]:,}</td>' for k in ("inputs", "succeeded", "failed", "skipped",
                                                                   "variants", "rows")) in page
    assert (counts["inputs"], counts["failed"], counts["variants"]) == (4, 1, 6)
    assert manifest["checkpoint"]["sha256"] in page and f"{counts['audio_seconds'] / 3600:.4f} h" in page
    errors = [json.loads(line) for line in (out / "errors" / f"{manifest['run_id']}.jsonl").read_text().splitlines()]
    assert '<td>read</td><td>unreadable</td><td class="num">2</td>' in page  # one per variant
    for error in errors:
        assert error["track_key"] == "broken" and "'" in error["message"]
        assert "&#x27;" in html.escape(error["message"]) and html.escape(error["message"]) in page
        assert html.escape(error["source"].replace(SECRET, "***")) in page
    sizes = [(out / s).stat().st_size for s in manifest["shards"]]
    assert f"{len(sizes)} shard{'s' * (len(sizes) != 1)}, {sum(sizes):,} bytes" in page
    for shard, size in zip(manifest["shards"], sizes):
        meta = pq.ParquetFile(out / shard).metadata
        assert (f'<td class="long">{shard}</td><td class="num">{meta.num_rows:,}</td>'
                f'<td class="num">{meta.num_row_groups:,}</td><td class="num">{size:,}</td>') in page
    assert "<pre>" in page and "ZeroPhaseBiquadLowPass" in page.split("<pre>")[1]


def test_secrets_are_scrubbed_from_everything_shown(run):
    out, manifest, page = run
    assert SECRET in (out / "runs" / f"{manifest['run_id']}.json").read_text()  # the config's input.uri holds it
    assert SECRET in (out / "errors" / f"{manifest['run_id']}.jsonl").read_text()  # and so does the error's source
    assert SECRET not in page and "in-***" in page


def test_every_picture_is_an_inline_png_that_shows_something(run):
    _, manifest, page = run
    images = _tags(page, "img")
    expected = 3 + 3 + 1 + ("timing" in manifest)  # spectrograms and waveforms of 3 tracks, histograms, timing
    assert len(images) == expected
    for image in images:
        assert image["alt"] and image["src"].startswith("data:image/png;base64,")
        picture = Image.open(io.BytesIO(base64.b64decode(image["src"].split(",", 1)[1], validate=True)))
        assert picture.format == "PNG" and picture.width >= 400
        assert np.asarray(picture.convert("RGB"), np.float32).std() > 0
    for key in manifest["tracks"]:
        assert f"Spectrograms of {key}, variant 0: mixture, instruments, vocals" in [i["alt"] for i in images]
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, re.IGNORECASE)
    assert "<script" not in page and "<link" not in page and "@import" not in page


def _level_below_8k(wave: np.ndarray, rate: int) -> float:
    """dB of the energy below 8 kHz: the band a 48 kbit/s Opus stream always codes (it may drop the top)."""
    spectrum = np.fft.rfft(wave.astype(np.float64), axis=0)
    return 10 * np.log10(np.sum(np.abs(spectrum[np.fft.rfftfreq(len(wave), 1 / rate) < 8000]) ** 2) / len(wave))


def test_each_sampled_track_has_clips_of_its_stems_and_of_their_sum(run):
    out, manifest, page = run
    players = _tags(page, "audio")
    assert len(players) == 3 * 3  # per track: the stems' sum (the mixture), instruments, vocals
    for number, key in enumerate(sorted(manifest["tracks"])):
        files = {stem: sf.read(out / "stems" / key / "v0" / f"{stem}.wav", dtype="float32") for stem in STEMS}
        rate = files["vocals"][1]
        references = {"mixture (the stems' sum)": files["instruments"][0] + files["vocals"][0],
                      **{stem: wave for stem, (wave, _) in files.items()}}
        for player, (name, reference) in zip(players[3 * number: 3 * number + 3], references.items()):
            assert player["title"] == f"{name}, first {len(reference) / rate:.1f} s" and "controls" in player
            assert player["src"].startswith("data:audio/ogg;codecs=opus;base64,")
            clip, clip_rate = sf.read(io.BytesIO(base64.b64decode(player["src"].split(",", 1)[1], validate=True)))
            expected = resample_poly(reference, 160, 147, axis=0)  # 44.1 kHz → Opus's 48 kHz
            assert clip_rate == 48000 and abs(len(clip) - len(expected)) <= 48 * 25  # within an Opus frame
            # white noise is a 48 kbit/s codec's worst case: it keeps about 2 dB less of it; tones stay exact
            tolerance = 2.5 if key == "sub/noise" else 0.3
            assert _level_below_8k(clip, 48000) == pytest.approx(_level_below_8k(expected, 48000), abs=tolerance)


def test_a_spectrogram_is_its_track_rows_on_one_colour_scale(run):
    out, manifest, page = run
    for key in manifest["tracks"]:
        columns = _track_rows(out, manifest, key, 0)
        decibels = [20 * np.log10(np.maximum(c, 1e-10)) for c in columns.values()]
        vmax = max(float(d.max()) for d in decibels)
        vmin = max(min(float(d.min()) for d in decibels), vmax - 80)
        frames = columns["mixture"].shape[1]
        assert f"{frames} frames; one colour scale for all panels: {vmin:.1f} to {vmax:.1f} dB." in page


def test_augmentation_is_plotted_against_the_configured_ranges(run, tmp_path):
    out, manifest, page = run
    table = pq.read_table([str(out / s) for s in manifest["shards"]]).to_pylist()
    drawn = {(r["track_key"], r["variant"]): (r["lowpass_cutoff_hz"], r["gain_db"]) for r in table}
    assert len(drawn) == 6 and all(3200 <= c <= 4800 and -6 <= g <= 6 for c, g in drawn.values())
    for line in ("low-pass cutoff (Hz): drawn for 6 of 6 track variants; configured 3200 to 4800; 0 outside",
                 "low-pass Q: drawn for 6 of 6 track variants; configured 0.5657 to 0.8485; 0 outside",
                 "gain (dB): drawn for 6 of 6 track variants; configured -6 to 6; 0 outside"):
        assert line in page
    copy = _copy(out, tmp_path)  # the same draws against a narrower configured gain: every one is flagged
    path = copy / "runs" / f"{manifest['run_id']}.json"
    edited = read_manifest(path)
    edited["config"]["augment"]["chain"][1].update(min_gain_db=-0.01, max_gain_db=0.01)
    path.write_text(json.dumps(edited))
    assert "configured -0.01 to 0.01; 6 outside the configured range" in build_report(str(copy), samples=0)
    edited["config"]["augment"]["chain"] = []
    path.write_text(json.dumps(edited))
    assert "No augmentation configured." in build_report(str(copy), samples=0)


def test_all_runs_newest_first_one_run_alone_and_an_older_manifest(run, tmp_path):
    out, manifest, _ = run
    copy = _copy(out, tmp_path)
    older = {k: v for k, v in manifest.items() if k not in ("timing", "detail", "keys")}  # an old layout's
    older.update(run_id="0-older", started_at="2020-01-01T00:00:00Z", finished_at="2020-01-01T01:02:03Z")
    (copy / "runs" / "0-older.json").write_text(json.dumps(older))
    both = build_report(str(copy), samples=0)
    new_at, old_at = both.index(f'<section id="run-{manifest["run_id"]}">'), both.index('<section id="run-0-older">')
    assert both.index("<h2>Runs</h2>") < new_at < old_at
    assert '<a href="#run-0-older">0-older</a>' in both and "1 h 02 min" in both
    older_section = both[old_at:]
    assert "no per-track timing" in older_section and "No input was rejected." in older_section
    assert ("Processing time against audio length" in both[new_at:old_at]) == ("timing" in manifest)
    alone = build_report(str(copy), run_id="0-older", samples=0)
    assert '<section id="run-0-older">' in alone and f'id="run-{manifest["run_id"]}"' not in alone
    assert "<h2>Runs</h2>" not in alone
    with pytest.raises(ReportError, match="no committed run 'nope'") as error:
        build_report(str(copy), run_id="nope")
    assert manifest["run_id"] in str(error.value) and "0-older" in str(error.value) and "\n" not in str(error.value)


def test_what_is_not_an_output_root_or_not_committed_is_refused_in_one_line(run, tmp_path):
    with pytest.raises(ReportError, match=r"not a stemforge output root \(no runs/\*\.json\)") as error:
        build_report(str(tmp_path))
    assert "\n" not in str(error.value)
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "x.json").write_text(json.dumps({"run_id": "x", "status": "failed", "shards": []}))
    with pytest.raises(ReportError, match="no committed run"):
        build_report(str(tmp_path))
    with pytest.raises(ReportError, match="samples"):
        build_report(str(run[0]), samples=-1)


def test_missing_stems_are_said_and_samples_are_honoured(run, tmp_path):
    out = run[0]
    copy = _copy(out, tmp_path)
    shutil.rmtree(copy / "stems")
    page = build_report(str(copy), samples=1)
    assert "Stem files not found" in page and "chirp22k/v0/vocals.wav" in page
    assert [i["alt"] for i in _tags(page, "img") if i["alt"].startswith(("Spectrograms", "Waveforms"))] == [
        "Spectrograms of chirp22k, variant 0: mixture, instruments, vocals"]


def test_messages_are_escaped_and_urls_lose_their_credentials(run, tmp_path):
    out, manifest, _ = run
    copy = _copy(out, tmp_path)
    hostile = {"source": "s3://user:hunter22@bucket/a.wav?X-Amz-Signature=abcd", "track_key": "a", "stage": "read",
               "error": "unreadable", "message": '<img src=x onerror=alert(1)> & "quoted"'}
    with open(copy / "errors" / f"{manifest['run_id']}.jsonl", "a") as handle:
        handle.write(json.dumps(hostile) + "\n")
    page = build_report(str(copy), samples=0)
    assert "&lt;img src=x onerror=alert(1)&gt; &amp; &quot;quoted&quot;" in page and "<img src=x" not in page
    assert "s3://***@bucket/a.wav?***" in page and "hunter22" not in page and "abcd" not in page
    target = tmp_path / "elsewhere" / "r.html"
    assert write_report(str(copy), str(target), samples=0) == str(target)
    assert target.read_text().startswith("<!DOCTYPE html>")


PIXEL_CHECK = """() => Array.from(document.images).map(img => {
  const canvas = document.createElement("canvas");
  canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
  const context = canvas.getContext("2d");
  context.drawImage(img, 0, 0);
  const data = context.getImageData(0, 0, canvas.width, canvas.height).data;
  let varied = false;
  for (let i = 4; i < data.length && !varied; i += 4) {
    varied = data[i] !== data[0] || data[i + 1] !== data[1] || data[i + 2] !== data[2];
  }
  return {alt: img.alt, loaded: img.complete && img.naturalWidth > 0, varied};
})"""
PLAYERS_LOADED = "() => Array.from(document.querySelectorAll('audio')).every(a => a.readyState >= 1 || a.error)"
PLAYER_CHECK = "() => Array.from(document.querySelectorAll('audio')).map(a => ({duration: a.duration, error: a.error}))"


def test_the_page_renders_in_headless_chromium(run, tmp_path):
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("chromium is not installed")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    out, _, page_text = run
    problems, requests, shot = [], [], tmp_path / "report.png"
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
            page.on("pageerror", lambda error: problems.append(str(error)))
            page.on("request", lambda request: requests.append(request.url))
            page.goto((out / "report.html").as_uri())
            images = page.evaluate(PIXEL_CHECK)
            page.wait_for_function(PLAYERS_LOADED)
            players = page.evaluate(PLAYER_CHECK)
            overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    assert problems == []
    assert all(url.startswith(("file:", "data:")) for url in requests)  # nothing from the network
    assert len(images) == len(_tags(page_text, "img")) and all(i["loaded"] and i["varied"] for i in images), images
    assert len(players) == len(_tags(page_text, "audio")) == 9
    assert all(p["error"] is None and p["duration"] > 0 for p in players), players
    assert overflow <= 0  # nothing wider than the window
    picture = Image.open(shot)
    assert picture.format == "PNG" and picture.width == 1200 and picture.height > 2500
    assert np.asarray(picture.convert("L"), np.float32).std() > 10
    shutil.copy(shot, "/tmp/report_screenshot.png")


def test_the_command_writes_the_page_and_refuses_a_bad_path_in_one_line(run, tmp_path, capsys):
    out, manifest, _ = run
    destination = tmp_path / "r.html"
    assert main(["report", str(out), "--run", manifest["run_id"], "--output", str(destination), "--samples", "1"]) == 0
    assert capsys.readouterr().out.strip() == f"report: {destination}"
    page = destination.read_text()
    assert manifest["run_id"] in page and page.count("<h4>") == 1  # one sample track
    assert main(["report", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "not a stemforge output root" in err
    assert main(["report", str(out), "--run", "nope"]) == 2
    assert manifest["run_id"] in capsys.readouterr().err
