# locollm: the commands a newcomer runs. Every target sets up what it needs first.
#   make demo                 the whole spine on the embedded Gemma 3 270M (CPU, ~15 min)
#   make test                 the test suite (includes slow end-to-end tests)
#   make train DOMAIN=math    train adapters/math from its training/dataset.jsonl
#   make eval DOMAIN=math     adapter vs base on adapters/math/eval/benchmark.jsonl
#   make export DOMAIN=math   LoRA GGUF + numeric verification
#   make serve                OpenAI-compatible server on 127.0.0.1:8000
#   make bench                benchmark scripts (ratios against a same-run baseline)

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
LOCO := $(VENV)/bin/locollm
DOMAIN ?= math
ARGS ?=
# CPU build of torch (pip takes it from disk here). A machine with a CUDA torch keeps its own:
# setup only installs torch when none is importable.
TORCH_SPEC ?= torch==2.13.0
DEMO_DIR ?= runs/demo
STAMP := $(VENV)/.locollm-setup
export OMP_WAIT_POLICY ?= PASSIVE
export CMAKE_BUILD_PARALLEL_LEVEL ?= $(shell nproc 2>/dev/null || echo 2)

.PHONY: setup test test-fast demo train eval export serve bench lint clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

test: setup
	$(PY) -m pytest -q

test-fast: setup
	$(PY) -m pytest -q -m "not slow"

lint: setup
	$(VENV)/bin/ruff check .

demo: setup
	$(PY) adapters/math/training/generate_data.py
	$(LOCO) data check adapters/math/training/dataset.jsonl --benchmark adapters/math/eval/benchmark.jsonl
	$(LOCO) train --config configs/demo.yaml --dataset adapters/math/training/dataset.jsonl --output $(DEMO_DIR)/math
	$(LOCO) export $(DEMO_DIR)/math --gguf --verify
	$(LOCO) query "Maya has 38 shells and gets 47 more. How many shells does Maya have now?" --adapter $(DEMO_DIR)/math
	$(LOCO) eval --adapter $(DEMO_DIR)/math --benchmark adapters/math/eval/benchmark.jsonl --ood adapters/math/eval/ood.jsonl

train: setup
	$(LOCO) train --domain $(DOMAIN) $(ARGS)

eval: setup
	$(LOCO) eval --adapter $(DOMAIN) $(ARGS)

export: setup
	$(LOCO) export $(DOMAIN) --gguf --verify $(ARGS)

serve: setup
	$(LOCO) serve $(ARGS)

bench: setup
	@for script in bench/*.py; do echo "== $$script"; $(PY) $$script || exit 1; done

clean:
	rm -rf $(DEMO_DIR) .pytest_cache .ruff_cache
