# `make demo` and `make test` create .venv on first use with exactly the versions (and hashes) in
# requirements.lock; `make lock` regenerates the lock from setup.cfg + constraints.txt.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
LOCK := requirements.lock
STAMP := $(VENV)/.installed-$(shell cat $(LOCK) setup.cfg pyproject.toml | sha256sum | cut -c1-16)
ARGS ?=
LOCK_VENV := .venv-lock
PIP_TOOLS := pip-tools==7.6.2
LOCK_ARGS ?=

.PHONY: demo test test-fast lint fix docs venv lock clean-venv gpu-check

venv: $(STAMP)

# The stamp names a hash of the dependency files, so a second `make test` does not reinstall,
# and a new lock does. Every package comes from the lock, pip included, pinned and hash-checked
# (--no-deps: nothing resolves on the day of the install); then the project itself, editable,
# without dependencies. `pip check` fails if setup.cfg asks for a package the lock lacks: run
# `make lock`. (pip warns "Location ... is ignored" for each package that a file:// index in
# this machine's pip configuration lacks; that is harmless.)
$(STAMP):
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --require-hashes --no-deps -r $(LOCK)
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	$(PY) -m pip check
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

demo: $(STAMP)
	$(PY) tools/demo.py $(ARGS)

# pytest exits 5 when it collected no tests: that is a failure here too.
PYTEST = $(PY) -m pytest $(1) $(ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing"; exit 1; fi; exit $$rc

# The whole suite, after lint and the docs build (a broken link or a missing page fails).
test: $(STAMP) lint docs
	$(call PYTEST,)

# Everything but the tests marked slow (the whole pipeline, fault injection, multi-process
# launches): the edit loop's tier, under 2 minutes on 2 cores.
test-fast: $(STAMP)
	$(call PYTEST,-m "not slow")

lint: $(STAMP)
	$(VENV)/bin/ruff check .

# the safe fixes (import order, unused imports); review the diff
fix: $(STAMP)
	$(VENV)/bin/ruff check --fix .

docs: $(STAMP)
	$(PY) -m mkdocs build --strict --quiet --site-dir site

# On a machine with a CUDA GPU: each full stream recipe trains a few steps on one GPU, a fusion run
# (runs/demo/fusion after `make demo`, else an untrained one) predicts and runs live mode on a
# generated clip there; writes docs/results/gpu_check.md. Without a GPU: "error: no CUDA device".
gpu-check: $(STAMP)
	$(PY) tools/gpu_check.py --markdown docs/results/gpu_check.md $(ARGS)

# Resolve setup.cfg (with the test extra) and pip itself under constraints.txt for this Python
# and platform, through the indexes in pip's configuration; keeps the lock's current versions
# where they still fit (LOCK_ARGS=--upgrade moves everything to the newest allowed). pip-tools
# lives in its own venv, so it is not part of the locked environment.
lock:
	test -x $(LOCK_VENV)/bin/pip-compile || \
	  { $(PYTHON) -m venv $(LOCK_VENV) && $(LOCK_VENV)/bin/pip install -q $(PIP_TOOLS); }
	echo pip > $(LOCK_VENV)/installer.in
	CUSTOM_COMPILE_COMMAND="make lock" $(LOCK_VENV)/bin/pip-compile --quiet --generate-hashes \
	  --allow-unsafe --extra test --strip-extras --no-emit-index-url --no-emit-find-links \
	  --constraint constraints.txt --output-file $(LOCK) $(LOCK_ARGS) setup.cfg $(LOCK_VENV)/installer.in

clean-venv:
	rm -rf $(VENV)
