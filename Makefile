# Two commands set up a fresh machine (Python 3.11):  `make run`  and  `make test`.
# Both create .venv on first use and are quick once it exists.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
WORKSPACE ?= sample_data

# A CUDA pod: build llama.cpp with CUDA and reuse the pod's own CUDA torch (never downgrade it).
HAS_CUDA := $(shell command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1 && echo 1)
ifeq ($(HAS_CUDA),1)
  LLAMA_CMAKE_ARGS ?= -DGGML_CUDA=on
  EXTRAS ?= dev,gpu
else
  EXTRAS ?= dev
endif

.PHONY: run test lint unit bench venv clean

run: $(STAMP)
	$(BIN)/workbench -w $(WORKSPACE)

test: $(STAMP)
	$(BIN)/ruff check workbench screens tests bench
	$(BIN)/ruff format --check workbench screens tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/pytest -n auto -q

unit: $(STAMP)
	$(BIN)/pytest -n auto -q tests/unit

bench: $(STAMP)
	$(BIN)/python bench/startup.py

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || { \
	  if $(PYTHON) -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then \
	    echo "Using the system's CUDA torch (venv with --system-site-packages)"; \
	    $(PYTHON) -m venv --system-site-packages $(VENV); \
	  else \
	    $(PYTHON) -m venv $(VENV); \
	  fi; }
	$(BIN)/python -m pip install -q --upgrade pip==25.3
	@# Torch first: a bare `torch` requirement would pull a multi-GB CUDA build onto a CPU machine.
	@$(BIN)/python -c 'import torch' 2>/dev/null || \
	  if [ "$(HAS_CUDA)" = "1" ]; then $(BIN)/python -m pip install -q 'torch>=2.6,<2.15'; \
	  else $(BIN)/python -m pip install -q torch==2.13.0; fi
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/python -m pip install -q -e ".[$(EXTRAS)]"
	@touch $(STAMP)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
