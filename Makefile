# `make test` and `make demo` work from a fresh clone: they create .venv and install everything.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# torch first, pinned: on these machines 2.13.0 is a local CPU build; a bare `torch` pulls a multi-GB CUDA build.
TORCH_PIN ?= torch==2.13.0
# audio-separator, the UVR reference of tests/uvr_reference.py, installed --no-deps: its VR modules need
# only what the test extras install, not its other architectures' dependencies (onnxruntime, diffq, ...).
AUDIO_SEPARATOR := 0.47.1

.PHONY: venv test test-slow test-all demo bench clean

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

bench: venv
	$(PY) benchmarks/model_throughput.py
	$(PY) benchmarks/augment_throughput.py
	$(PY) benchmarks/pipeline_throughput.py

clean:
	rm -rf $(VENV) demo_output demo_corpus .pytest_cache
