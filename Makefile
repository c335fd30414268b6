# locollm: the commands a newcomer runs. Every target sets up what it needs first.
#   make demo                 the whole spine on the embedded Gemma 3 270M (CPU, ~15 min)
#   make test                 the test suite (includes slow end-to-end tests)
#   make train DOMAIN=math    train adapters/math from its training/dataset.jsonl
#   make eval DOMAIN=math     adapter vs base on adapters/math/eval/benchmark.jsonl
#   make export DOMAIN=math   LoRA GGUF + numeric verification
#   make serve                OpenAI-compatible server on 127.0.0.1:8000
#   make bench                benchmark scripts (ratios against a same-run baseline)
#   make doctor               does llama.cpp run here? torch, CUDA, build flags, cache

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
LOCO := $(VENV)/bin/locollm
DOMAIN ?= math
ARGS ?=
# CPU build of torch (pip takes it from disk here). A machine with a CUDA torch keeps its own:
# setup only installs torch when none is importable.
TORCH_SPEC ?= torch==2.13.0
# Exact versions of everything else a fresh machine installs, build tools included (pip reads
# PIP_CONSTRAINT in the isolated build environments too), so a new upstream release changes
# nothing here without a commit. torch and llama-cpp-python are pinned separately (TORCH_SPEC,
# locollm/llama_build.py) because a user's CUDA/Metal build of either must be kept.
# Refresh after an upgrade that passed `make test`: `make constraints`.
CONSTRAINTS ?= constraints.txt
# llama-cpp-python (LLAMA_SPEC: the version the suite passed with) is built by
# locollm/llama_build.py, not by pip's dependency resolution:
#  - GGML_NATIVE=OFF, and each ISA extension named from this CPU's own flags: AVX, AVX2, FMA,
#    F16C, BMI2 and AVX-512 stay on where the CPU has them (the fast paths; same speed as the
#    native build, bench/llama_build_speed.py), AMX is always off. The default native build
#    compiles ggml's AMX matmul on any CPU that advertises AMX, and on VMs that do not enable
#    the AMX tile state it dies at the first decode (SIGSEGV in ggml_backend_amx_mul_mat).
#    GGML_BACKEND_DL + GGML_CPU_ALL_VARIANTS would pick the AMX variant on such a CPU.
#  - the wheel is cached per (version, flags): pip's wheel cache ignores CMAKE_ARGS.
#  - an installed llama-cpp-python (CUDA, Metal, Colab's) is kept when its decode check passes.
# LLAMA_REBUILD=1 rebuilds anyway; LLAMA_CMAKE_ARGS adds flags of your own (-DGGML_CUDA=ON).
LLAMA_SPEC := llama-cpp-python==0.3.36
LLAMA_REBUILD ?=
export LLAMA_CMAKE_ARGS ?=
DEMO_DIR ?= runs/demo
STAMP := $(VENV)/.locollm-setup
export OMP_WAIT_POLICY ?= PASSIVE
export CMAKE_BUILD_PARALLEL_LEVEL ?= $(shell nproc 2>/dev/null || echo 2)

.PHONY: setup test test-fast demo train eval export serve bench lint clean doctor constraints

setup: $(STAMP)

# Ends with the decode check in a child process: a llama.cpp that would crash fails setup with
# its cause and the rebuild command, not a segfault in the middle of a test or a training run.
$(STAMP): pyproject.toml $(CONSTRAINTS) locollm/llama_build.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	PIP_CONSTRAINT=$(CURDIR)/$(CONSTRAINTS) $(PY) -m pip install -q --upgrade pip
	$(PY) -c "import torch" 2>/dev/null || PIP_CONSTRAINT=$(CURDIR)/$(CONSTRAINTS) \
	    $(PY) -m pip install -q "$(TORCH_SPEC)"
	PIP_CONSTRAINT=$(CURDIR)/$(CONSTRAINTS) $(PY) locollm/llama_build.py --python $(PY) \
	    --version $(subst llama-cpp-python==,,$(LLAMA_SPEC)) $(if $(LLAMA_REBUILD),--force)
	PIP_CONSTRAINT=$(CURDIR)/$(CONSTRAINTS) $(PY) -m pip install -q -e ".[dev]"
	$(LOCO) doctor --quick
	touch $@

doctor: setup
	$(LOCO) doctor

# Rewrite constraints.txt from what this venv holds (after `make test` passed with it).
constraints: setup
	$(PY) scripts/freeze_constraints.py $(CONSTRAINTS)

test: setup
	$(PY) -m pytest -q

test-fast: setup
	$(PY) -m pytest -q -m "not slow"

lint: setup
	$(VENV)/bin/ruff check .

demo: setup
	$(LOCO) doctor --quick
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
