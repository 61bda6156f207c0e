"""Live progress: redrawn on a terminal, plain log lines elsewhere, off with --quiet; live before the run ends,
never going down, ending at the run's true totals, on the default runner and with multi_processing (the
PortableRunner is covered by tests/reliability/test_reliability_cluster.py)."""

import itertools
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf
from apache_beam.options.pipeline_options import PipelineOptions
from stemforge_testing import music, progress_snapshots, write_config

from stemforge.pipeline.cli import main
from stemforge.pipeline.launch import progress_for_runner
from stemforge.pipeline.progress import ProgressWriter, read_progress, timed
from stemforge.pipeline.progress_display import ProgressDisplay

ROOT = Path(__file__).resolve().parents[2]
TRACKS = 6


@pytest.fixture(scope="module")
def many(tmp_path_factory, tiny_checkpoint) -> tuple[Path, Path, Path]:
    """Six 4-second tracks and one file that is not audio: a run of several seconds."""
    folder = tmp_path_factory.mktemp("many")
    for index in range(TRACKS):
        sf.write(folder / f"t{index}.wav", music(4 * 44100, seed=index).T, 44100, subtype="FLOAT")
    (folder / "bad.wav").write_bytes(b"not audio at all")
    return folder, write_config(folder.parent / "p.yaml"), tiny_checkpoint


def _args(many: tuple[Path, Path, Path], out: Path, *extra: str) -> list[str]:
    folder, config, checkpoint = many
    return [sys.executable, "-m", "stemforge", "run", "--config", str(config), "--input", str(folder),
            "--output", str(out), "--checkpoint", str(checkpoint), *extra]


def _manifest(out: Path) -> dict:
    [path] = (out / "runs").glob("*.json")
    return json.loads(path.read_text())


def _check(shown: list[tuple[int, ...]], done: tuple[int, ...] | None, manifest: dict) -> None:
    """At least two updates, one of them before every track was written, counts that only grow, and a
    last line equal to the committed totals."""
    counts = manifest["counts"]
    assert len(shown) >= 2, shown
    assert any(s[1] > 0 and s[3] < counts["variants"] for s in shown), shown  # seen while the run was working
    for before, after in itertools.pairwise(shown):
        assert all(a >= b for a, b in zip(after, before)), (before, after)
    assert all(s[0] <= counts["inputs"] and s[3] <= counts["variants"] for s in shown)
    assert done == (counts["inputs"], counts["variants"], counts["errors"], counts["failed"], counts["skipped"])
    assert done == (TRACKS + 1, TRACKS, 1, 1, 0)
    assert shown[-1][4] <= counts["errors"]


@pytest.mark.skipif(shutil.which("script") is None, reason="util-linux `script` (a pseudo-terminal) not installed")
def test_a_terminal_gets_a_live_display_that_grows_to_the_true_totals(many, tmp_path):
    out = tmp_path / "out"
    command = " ".join(_args(many, out, "--progress-interval", "0.2"))
    capture = tmp_path / "tty.txt"
    env = dict(os.environ, COLUMNS="250", TERM="xterm")
    done = subprocess.run(["script", "-qefc", command, str(capture)], env=env, cwd=ROOT, capture_output=True,
                          timeout=300, check=False)
    text = capture.read_text(errors="replace")
    assert done.returncode == 0, text[-3000:]
    assert "\x1b[" in text  # redrawn in place on a terminal
    shown, final = progress_snapshots(text)
    _check(shown, final, _manifest(out))
    assert text.index("done |") < text.index("tracks committed")  # the display ends before the summary


def test_off_a_terminal_it_logs_plain_lines_with_multi_processing(many, tmp_path):
    out = tmp_path / "out"
    done = subprocess.run(_args(many, out, "--progress-interval", "0.3", "--direct_num_workers", "2",
                                "--direct_running_mode", "multi_processing"),
                          cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [line for line in done.stderr.splitlines() if line.startswith("INFO stemforge.progress: ")]
    assert all(ch == "\t" or ch.isprintable() for line in lines for ch in line)  # no control characters
    shown, final = progress_snapshots("\n".join(lines))
    _check(shown, final, _manifest(out))


def test_quiet_shows_no_progress(many, tmp_path):
    out = tmp_path / "out"
    done = subprocess.run(_args(many, out, "--quiet", "--progress-interval", "0.2"), cwd=ROOT, capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "stemforge.progress" not in done.stderr and "tracks committed" in done.stdout


@pytest.mark.parametrize("interval", ["-5", "0", "nan"])
def test_a_progress_interval_that_is_not_positive_is_refused_before_any_work(tmp_path, capsys, interval):
    config = write_config(tmp_path / "c.yaml")
    assert main(["run", "--config", str(config), "--input", str(tmp_path / "in"), "--output", str(tmp_path / "out"),
                 "--progress-interval", interval]) == 2
    assert capsys.readouterr().err == (f"stemforge: --progress-interval must be a positive number of seconds, "
                                       f"got {float(interval):g}\n")
    assert not (tmp_path / "out").exists()


def test_workers_counters_are_summed_and_published_atomically(tmp_path):
    folder = str(tmp_path / "progress")
    first, second = ProgressWriter(folder, {}), ProgressWriter(folder, {})
    first.add("prepared", audio_seconds=2.5)
    first.add("prepared", audio_seconds=1.5)  # within the second: kept, not yet published
    second.add("written", tracks=3, audio_seconds=6.0)
    assert read_progress(folder, {})["prepared"] == {"tracks": 1, "audio_seconds": 2.5}
    first.flush()
    totals = read_progress(folder, {})
    assert totals["prepared"] == {"tracks": 2, "audio_seconds": 4.0}
    assert totals["written"] == {"tracks": 3, "audio_seconds": 6.0}
    assert sorted(p.suffix for p in (tmp_path / "progress").iterdir()) == [".json", ".json"]  # no temporaries
    assert read_progress(str(tmp_path / "absent"), {})["written"]["tracks"] == 0  # before start or after commit


def test_progress_is_not_written_when_disabled(tmp_path):
    writer = ProgressWriter(None, {})
    writer.add("prepared")
    writer.flush()
    assert not any(tmp_path.iterdir())


def test_the_line_knows_the_total_only_when_listing_is_done_and_estimates_the_rest(tmp_path):
    folder = str(tmp_path / "progress")
    writer = ProgressWriter(folder, {})
    display = ProgressDisplay(folder, {}, inputs=1, variants=2, mode="off")
    for stage, n in (("listed", 5), ("written", 3), ("rejected", 1)):
        writer.add(stage, tracks=n, audio_seconds=3600.0 if stage == "written" else 0.0)
    writer.flush()
    display.poll()
    assert "listed 5+" in display.line(30.0) and "ETA -" in display.line(30.0)
    writer.add("inputs_done")
    writer.flush()
    display.poll()
    line = display.line(30.0)
    # 5 inputs x 2 variants = 10, 1 rejected: 6 to go at 3 written per 30 s take 60 s; 1 h of audio in 30 s is 120x
    assert "written 3/10" in line and "errors 1" in line and "ETA 0:01:00" in line
    assert "120.0x real time" in line and "1.000 h audio" in line
    assert "separated 0" in line


def test_a_run_without_a_model_shows_no_separated_stage(tmp_path):
    folder = str(tmp_path / "progress")
    writer = ProgressWriter(folder, {})
    display = ProgressDisplay(folder, {}, inputs=1, variants=1, mode="off", separates=False)
    for stage in ("listed", "prepared", "written"):
        writer.add(stage, tracks=2)
    writer.flush()
    display.poll()
    line = display.line(10.0)
    assert "separated" not in line and "prepared 2 | written 2" in line


def test_timed_counts_the_producer_not_the_consumer():
    now = [0.0]

    def producer():
        for index in range(3):
            now[0] += 2.0  # producing an item takes 2 s
            yield index

    seconds = [0.0]
    for _ in timed(producer(), seconds, clock=lambda: now[0]):
        now[0] += 10.0  # the consumer's 10 s between items must not count
    assert seconds[0] == 6.0


def test_dataflow_runs_defer_to_dataflows_job_page(caplog):
    caplog.set_level("INFO", logger="stemforge")
    assert progress_for_runner("live", PipelineOptions(["--runner=DataflowRunner"])) == "off"
    assert "Dataflow job page" in caplog.text
    for runner in ("FnApiRunner", "PortableRunner", "apache_beam.runners.dask.dask_runner.DaskRunner"):
        assert progress_for_runner("plain", PipelineOptions([f"--runner={runner}"])) == "plain"
