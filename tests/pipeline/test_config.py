"""Config schema: defaults, validation messages that name the key path, overrides, redaction."""

import re
from pathlib import Path

import pytest
import yaml

from stemforge.pipeline.cli import main
from stemforge.config.run import ConfigError, build_config, load_config

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


@pytest.mark.parametrize("name", ["separate.yaml", "simulate.yaml", "demo.yaml"])
def test_shipped_configs_validate(name):
    config = load_config(CONFIGS / name)
    assert config.model.stems is None  # decided from the checkpoint at launch


def test_simulate_config_is_training_data_simulation():
    config = load_config(CONFIGS / "simulate.yaml")
    assert config.augment.variants == 4 and config.augment.keep_clean
    assert [step["transform"] for step in config.augment.chain] == ["ZeroPhaseBiquadLowPass", "Gain"]
    assert config.augment.chain[0]["jitter"] == [0.8, 1.2]


def test_vocal_remover_defaults():
    model = build_config({}).model
    assert (model.n_fft, model.hop_length, model.batch_size) == (2048, 1024, 4)
    assert model.cropsize is None and model.band_params is None and model.aggression is None  # from the checkpoint
    assert not model.allow_random_init and model.checkpoint is None


def test_unknown_key_is_named_with_its_path():
    with pytest.raises(ConfigError, match=r"^model\.batchsize: unknown key"):
        build_config({"model": {"batchsize": 8}})


def test_bad_choice_lists_allowed_values():
    with pytest.raises(ConfigError, match=r"output\.stem_format: must be one of 'flac', 'wav' or 'ogg'"):
        build_config({"output": {"stem_format": "mp3"}})


def test_overrides_parse_values_as_yaml():
    config = build_config({}, ["model.batch_size=16", "augment.chain=[{transform: Gain, p: 1.0}]",
                               "output.uri=s3://bucket/out"])
    assert config.model.batch_size == 16
    assert config.augment.chain[0]["transform"] == "Gain"
    assert config.output.uri == "s3://bucket/out"


def test_overrides_of_text_fields_keep_their_text():
    config = build_config({}, ["run.run_id=20261124", "model.sha256=" + "1" * 64, "output.uri=2026",
                               "model.checkpoint=null", "model.batch_size=08"])
    assert config.run.run_id == "20261124"
    assert config.model.sha256 == "1" * 64
    assert config.output.uri == "2026"
    assert config.model.checkpoint is None
    assert config.model.batch_size == 8


def test_override_into_scalar_is_an_error():
    with pytest.raises(ConfigError, match="model.n_fft.x: 'n_fft' is not a section"):
        build_config({"model": {"n_fft": 512}}, ["model.n_fft.x=1"])


def test_run_requires_a_checkpoint_unless_random_init_is_allowed():
    config = build_config({"input": {"uri": "in"}, "output": {"uri": "out"}})
    with pytest.raises(ConfigError, match="model.checkpoint: required"):
        config.require_runnable()
    build_config({"input": {"uri": "in"}, "output": {"uri": "out"},
                  "model": {"allow_random_init": True}}).require_runnable()


def test_secrets_are_redacted_and_do_not_change_the_fingerprint():
    secret = {"s3": {"key": "AKIAEXAMPLE", "secret": "hunter2-very-secret"}}
    config = build_config({"storage_options": secret})
    dumped = yaml.safe_dump(config.redacted())
    assert "hunter2-very-secret" not in dumped and "AKIAEXAMPLE" not in dumped
    assert config.fingerprint("abc") == build_config({}).fingerprint("abc")
    assert config.fingerprint("abc") != config.fingerprint("abd")
    assert build_config({}, ["model.tta=true"]).fingerprint("abc") != config.fingerprint("abc")
    where_and_how_fast = ["model.device=cpu", "model.batch_size=32", "model.cpu_threads=1", "model.checkpoint=b.pth"]
    assert build_config({}, where_and_how_fast).fingerprint("abc") == build_config({}).fingerprint("abc")


def test_validate_config_prints_resolved_config_without_secrets(tmp_path, capsys):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"storage_options": {"s3": {"secret": "topsecret-123"}},
                                    "model": {"batch_size": 2}}))
    assert main(["validate-config", str(path)]) == 0
    out = capsys.readouterr().out
    resolved = yaml.safe_load(out)
    assert resolved["model"]["batch_size"] == 2 and resolved["model"]["n_fft"] == 2048
    assert "topsecret-123" not in out


def test_validate_config_rejects_with_one_line(tmp_path, capsys):
    path = tmp_path / "c.yaml"
    path.write_text("model:\n  device: tpu\n")
    assert main(["validate-config", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert "model.device: must be one of 'auto', 'cpu', 'cuda' or 'mps'" in err


@pytest.mark.parametrize("chain, message", [
    ([{"transform": "Nope"}], "augment.chain: unknown transform 'Nope'"),
    ([{"transform": "Gain", "min_gain_db": 5, "max_gain_db": -5}], "augment.chain: chain entry 0 (Gain)"),
    ([{"transform": "ZeroPhaseBiquadLowPass", "cutoff_hz": -3.0}], "cutoff_hz and q must be positive"),
])
def test_augmentation_chain_is_checked_when_the_config_loads(chain, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        build_config({"augment": {"chain": chain}})


@pytest.mark.parametrize("output", [{"stem_format": "flac"}, {"stem_format": "wav"}, {"stem_format": "ogg"},
                                    {"stem_format": "wav", "stem_subtype": "PCM_16"}])
def test_clip_none_needs_a_float_subtype(output):
    subtype = output.get("stem_subtype") or {"flac": "PCM_24", "wav": "PCM_24", "ogg": "VORBIS"}[output["stem_format"]]
    with pytest.raises(ConfigError) as refused:
        build_config({"output": dict(output, clip="none")})
    assert str(refused.value) == (f"output.clip: 'none' writes stem samples beyond ±1.0 as they are, which the "
                                  f"{subtype} subtype cannot hold: use stem_format wav with stem_subtype FLOAT or "
                                  "DOUBLE, or clip rescale/clamp")
    for float_subtype in ("FLOAT", "DOUBLE"):
        built = build_config({"output": {"stem_format": "wav", "stem_subtype": float_subtype, "clip": "none"}})
        assert (built.output.clip, built.output.resolved_subtype) == ("none", float_subtype)


def test_where_and_what_a_run_writes_are_part_of_its_fingerprint():
    base = build_config({})
    assert base.output.stems_root is None and build_config({"output": {"uri": "s3://b/out/"}}).output.stems_root == (
        "s3://b/out/stems")
    assert build_config({"output": {"uri": "o", "stems_uri": "elsewhere"}}).output.stems_root == "elsewhere"
    prints = {build_config({}, overrides).fingerprint("sha") for overrides in (
        [], ["output.write_spectrograms=false"], ["output.stems_uri=/x"], ["output.stem_path={track_key}/{stem}.{ext}"])}
    assert len(prints) == 4
    assert build_config({}, ["output.write_spectrograms=true"]).fingerprint("sha") == base.fingerprint("sha")


def test_input_may_be_a_list_and_a_run_must_write_something():
    assert build_config({"input": {"uri": ["a/", "b.wav"]}}).input.uris == ("a/", "b.wav")
    assert build_config({"input": {"uri": "a/"}}).input.uris == ("a/",)
    with pytest.raises(ConfigError, match="input.uri: .*at least one"):
        build_config({"input": {"uri": []}})
    with pytest.raises(ConfigError, match="write_stems and write_spectrograms are both false"):
        build_config({"output": {"write_stems": False, "write_spectrograms": False}})
    with pytest.raises(ConfigError, match=r"must contain \{variant\} when augment.variants is 3"):
        build_config({"augment": {"variants": 3}, "output": {"stem_path": "{track_key}/{stem}.{ext}"}})


@pytest.mark.parametrize(("text", "message"), [
    ("model:\n  n_fft: 1024\n   batch_size: 2\n", "{path}:3:14: invalid YAML: mapping values are not allowed here"),
    ("model:\n  stems: [a, b\n", "{path}:3:1: invalid YAML: expected ',' or ']', but got '<stream end>' (while "
                                 "parsing a flow sequence)"),
    ("model:\n  n_fft: 1024\noutput:\n  uri: out\nmodel:\n  batch_size: 3\n",
     "{path}:5:1: invalid YAML: duplicate key 'model' (first given on line 1)"),
    ("model: {batch_size: 2, batch_size: 3}\n", "{path}:1:24: invalid YAML: duplicate key 'batch_size' (first given "
                                                "on line 1)"),
])
def test_a_bad_yaml_file_is_one_line_with_its_place(tmp_path, capsys, text, message):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    assert main(["validate-config", str(path)]) == 2
    assert capsys.readouterr().err.splitlines() == [f"stemforge: {message.format(path=path)}"]


@pytest.mark.parametrize("override", ["=3", "model..n_fft=3", "model.n_fft", ".=1"])
def test_a_malformed_override_is_named_as_such(override):
    with pytest.raises(ConfigError) as exc:
        build_config({}, [override])
    assert str(exc.value) == f"--set {override!r}: malformed override, expected dotted.key=value"


def test_a_repeated_key_in_an_override_value_is_refused():
    with pytest.raises(ConfigError) as exc:
        build_config({}, ["augment.chain=[{transform: Gain, transform: Gain}]"])
    assert str(exc.value) == ("--set 'augment.chain=[{transform: Gain, transform: Gain}]': the value is not valid "
                              "YAML (duplicate key 'transform' (first given on line 1))")
