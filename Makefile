# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.hmore-installed
# The CPU wheel of torch lies on disk here; install it before the package so that `torch>=2.1` is already met.
TORCH_SPEC ?= torch==2.13.0

.PHONY: install demo test lint bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml constraints.txt | $(PY)
	$(PY) -m pip install "$(TORCH_SPEC)"
	$(PY) -m pip install -c constraints.txt -e ".[all,dev]"
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(VENV)/bin/hmore demo -o out/demo
	@echo "open out/demo/index.html"

test: install
	$(PY) -m pytest -q

lint: install
	$(VENV)/bin/ruff check src tests benchmarks

bench: install
	$(PY) benchmarks/synth_speed.py

clean:
	rm -rf $(VENV) out .pytest_cache
