# Everyday commands.  PYTHON picks the interpreter: make test PYTHON=python3.13
# They run in a virtual environment: PYTHON's own if it runs in one, else the
# project's .venv, made from PYTHON (tools/project-python).
PYTHON ?= python3
RUN = py=$$(sh tools/project-python "$(PYTHON)") && "$$py"

.PHONY: test bench bench-quick check-c lint clean

# Install fastsync (compiling the extension) with its test tools, then run the suite.
test:
	$(RUN) -m pip install --quiet --no-cache-dir ".[test]" && "$$py" -m pytest

# Install fastsync and compare it with threading.
bench:
	$(RUN) -m pip install --quiet --no-cache-dir . && "$$py" bench/run.py

bench-quick:
	$(RUN) -m pip install --quiet --no-cache-dir . && "$$py" bench/run.py --quick

# The C layer's own tests (see csrc/Makefile for PLATFORM, SANITIZE, RUNNER).
check-c:
	$(MAKE) -C csrc check

lint:
	$(RUN) -m ruff check src tests bench setup.py && MYPYPATH=src "$$py" -m mypy src/fastsync tests/check_types.py

clean:
	rm -rf build dist src/*.egg-info src/fastsync/_compiled.c src/fastsync/*.so src/fastsync/*.html .venv
	-$(MAKE) -C csrc clean
