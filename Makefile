# `make test` and `make demo` work from a fresh clone: they create .venv and install everything.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# torch first, pinned: on these machines 2.13.0 is a local CPU build; a bare `torch` pulls a multi-GB CUDA build.
TORCH_PIN ?= torch==2.13.0
# audio-separator, the UVR reference of tests/uvr_reference.py, installed --no-deps: its VR modules need
# only what the test extras install, not its other architectures' dependencies (onnxruntime, diffq, ...).
AUDIO_SEPARATOR := 0.47.1

# The shipped voice/music model (model/weights/README.md): its data and training, from nothing.
DEMO_MODEL_DIR := demo_model
STEMFORGE := $(PY) -m pipeline

.PHONY: venv test test-slow test-all demo demo-model bench clean

$(VENV)/.installed: setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH_PIN)"
	$(PY) -m pip install -q -e ".[test,aws]"
	$(PY) -m pip install -q --no-deps "audio-separator==$(AUDIO_SEPARATOR)"
	touch $@

venv: $(VENV)/.installed

test: venv
	$(PY) -m pytest -q

test-slow: venv
	$(PY) -m pytest -q -m slow

test-all: venv
	$(PY) -m pytest -q -m "slow or not slow"

demo: venv
	$(PY) -m pipeline demo

demo-model: venv
	rm -rf $(DEMO_MODEL_DIR)
	$(STEMFORGE) synth $(DEMO_MODEL_DIR)/stems --tracks 240 --seed 1 --seconds 12 --ratios-db=-6,-3,0,3,6
	$(STEMFORGE) run --config configs/mix.yaml --input $(DEMO_MODEL_DIR)/stems/stemset.csv \
	  --output $(DEMO_MODEL_DIR)/mixes --set model.n_fft=1024 --set model.hop_length=512 \
	  --set output.write_stems=false --direct_num_workers 2 --direct_running_mode multi_processing
	$(STEMFORGE) train --config configs/demo_model.yaml --data $(DEMO_MODEL_DIR)/mixes --output $(DEMO_MODEL_DIR)/train
	$(STEMFORGE) synth $(DEMO_MODEL_DIR)/heldout --tracks 30 --seed 90001 --seconds 12
	@echo "== the retrained model on held-out mixtures"
	$(STEMFORGE) evaluate --checkpoint $(DEMO_MODEL_DIR)/train/best.safetensors --n-fft 1024 --hop-length 512 \
	  --data $(DEMO_MODEL_DIR)/heldout/stemset.csv --output $(DEMO_MODEL_DIR)/retrained.csv | tail -2
	@echo "== the shipped model on the same mixtures"
	$(STEMFORGE) evaluate --checkpoint model/weights/voice-music-1024.safetensors --n-fft 1024 --hop-length 512 \
	  --data $(DEMO_MODEL_DIR)/heldout/stemset.csv --output $(DEMO_MODEL_DIR)/shipped.csv | tail -2
	@echo "to ship the retrained weights: cp $(DEMO_MODEL_DIR)/train/best.safetensors model/weights/voice-music-1024.safetensors"
	@echo "and record its sha256 (sha256sum) in model/shipped.py and model/weights/README.md"

bench: venv
	$(PY) benchmarks/model_throughput.py
	$(PY) benchmarks/augment_throughput.py
	$(PY) benchmarks/pipeline_throughput.py

clean:
	rm -rf $(VENV) demo_output demo_corpus demo_stems demo_mixes .pytest_cache
