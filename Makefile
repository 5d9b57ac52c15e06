# Two commands: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat setup.cfg constraints.txt pyproject.toml | sha256sum | cut -c1-16)
ARGS ?=

.PHONY: demo test venv clean-venv

venv: $(STAMP)

# The stamp names a hash of the dependency files, so a second `make test`
# does not reinstall, and a change to setup.cfg/constraints.txt does.
$(STAMP):
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip setuptools wheel
	$(PY) -m pip install -q -c constraints.txt -e '.[test]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

demo: $(STAMP)
	$(PY) tools/demo.py $(ARGS)

# pytest exits 5 when it collected no tests: that is a failure here too.
test: $(STAMP)
	$(PY) -m pytest $(ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing"; exit 1; fi; exit $$rc

clean-venv:
	rm -rf $(VENV)
