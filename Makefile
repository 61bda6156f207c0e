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
DEMO_MODEL_WEIGHTS := model/weights/voice-music-1024.safetensors
# demo-model-real's sources (training/sources.py); drascula-music and alsa-utils are reserved, never used.
DEMO_MODEL_PACKAGES := espeak-ng flite festival festvox-kallpc16k festvox-us-slt-hts klettres-data fillets-ng-data \
  wesnoth-1.16-music colobot-common-sounds hedgewars-data warzone2100-music
STEMFORGE := $(PY) -m stemforge

.PHONY: venv test test-slow test-all demo demo-model demo-model-data demo-model-real bench clean

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
	$(PY) -m stemforge demo

demo-model: venv
	rm -rf $(DEMO_MODEL_DIR)
	$(STEMFORGE) synth $(DEMO_MODEL_DIR)/stems --tracks 240 --seed 1 --seconds 12 --ratios-db=-6,-3,0,3,6
	$(STEMFORGE) run --config configs/mix.yaml --input $(DEMO_MODEL_DIR)/stems/stemset.csv \
	  --output $(DEMO_MODEL_DIR)/mixes --set model.n_fft=1024 --set model.hop_length=512 \
	  --set output.write_stems=false --direct_num_workers 2 --direct_running_mode multi_processing
	$(STEMFORGE) train --config configs/demo_model.yaml --data $(DEMO_MODEL_DIR)/mixes --output $(DEMO_MODEL_DIR)/train
	$(MAKE) demo-model-real DEMO_MODEL_INIT=$(DEMO_MODEL_DIR)/train/best.safetensors

demo-model-data:
	@if [ "$$(id -u)" = 0 ]; then DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
	  $(DEMO_MODEL_PACKAGES); elif ! dpkg -s $(DEMO_MODEL_PACKAGES) >/dev/null 2>&1; then \
	  echo "this needs these Debian packages (about 500 MB); as root: apt-get install $(DEMO_MODEL_PACKAGES)"; \
	  exit 2; fi

# Stage 2 of the shipped model (docs/training.md): stage 1 (DEMO_MODEL_INIT, made by `make demo-model`, which
# runs this target last) fine-tuned on recorded voices and music; the result and the shipped model are scored
# on held-out real voices over held-out recorded music and on synthetic stems (benchmarks/real_voice_eval.py).
DEMO_MODEL_INIT ?= $(DEMO_MODEL_DIR)/train/best.safetensors
demo-model-real: venv demo-model-data
	@test -f $(DEMO_MODEL_INIT) || { echo "no $(DEMO_MODEL_INIT): run make demo-model (stage 1, then this)"; exit 2; }
	rm -rf $(addprefix $(DEMO_MODEL_DIR)/,real_stems real_mixes real_train real_heldout)
	$(STEMFORGE) synth-real $(DEMO_MODEL_DIR)/real_stems --tracks 200 --seed 1 --split train --seconds 12 \
	  --ratios-db=-6,-3,0,3,6
	$(STEMFORGE) run --config configs/mix.yaml --input $(DEMO_MODEL_DIR)/real_stems/stemset.csv \
	  --output $(DEMO_MODEL_DIR)/real_mixes --set model.n_fft=1024 --set model.hop_length=512 \
	  --set output.write_stems=false --direct_num_workers 2 --direct_running_mode multi_processing
	$(STEMFORGE) train --config configs/demo_model_real.yaml --data $(DEMO_MODEL_DIR)/real_mixes \
	  --output $(DEMO_MODEL_DIR)/real_train --init $(DEMO_MODEL_INIT)
	$(PY) benchmarks/real_voice_eval.py --out $(DEMO_MODEL_DIR)/real_heldout \
	  --checkpoint shipped=$(DEMO_MODEL_WEIGHTS) \
	  --checkpoint rebuilt=$(DEMO_MODEL_DIR)/real_train/best.safetensors
	@echo "to ship the rebuilt weights: cp $(DEMO_MODEL_DIR)/real_train/best.safetensors $(DEMO_MODEL_WEIGHTS)"
	@echo "and record its sha256 (sha256sum) in model/shipped.py and model/weights/README.md"

bench: venv
	$(PY) benchmarks/model_throughput.py
	$(PY) benchmarks/augment_throughput.py
	$(PY) benchmarks/pipeline_throughput.py

clean:
	rm -rf $(VENV) demo_output demo_corpus demo_stems demo_mixes .pytest_cache
