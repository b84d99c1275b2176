# Everyday commands.  PYTHON picks the interpreter: make test PYTHON=python3.13
# They run in a virtual environment: PYTHON's own if it runs in one, else the
# project's .venv, made from PYTHON (tools/project-python).  A .venv that they
# did not make is never replaced or removed: used if it runs PYTHON, else left.
PYTHON ?= python3
RUN = py=$$(sh tools/project-python "$(PYTHON)") && "$$py"

.PHONY: test bench bench-quick docs check-c tsan lint clean

# These also build the benchmark's floor, an extension of its own (see setup.py).
test bench bench-quick: export FASTSYNC_BENCH_FLOOR = 1

# Install fastsync (compiling the extension) with its test tools, then run the
# suite; PYTEST_ARGS passes options or test files on to pytest.
test:
	$(RUN) -m pip install --quiet --no-cache-dir ".[test]" && "$$py" -m pytest $(PYTEST_ARGS)

# Install fastsync and compare it with threading.
bench:
	$(RUN) -m pip install --quiet --no-cache-dir . && "$$py" bench/run.py

bench-quick:
	$(RUN) -m pip install --quiet --no-cache-dir . && "$$py" bench/run.py --quick

# Install fastsync and the pinned documentation tools (docs/requirements.txt),
# then build the HTML docs into docs/_build/html; any warning fails the build.
docs:
	$(RUN) -m pip install --quiet --no-cache-dir . -r docs/requirements.txt \
	  && "$$py" -m sphinx -W --keep-going -b html docs docs/_build/html

# The C layer's own tests (see csrc/Makefile for PLATFORM, SANITIZE, RUNNER).
check-c:
	$(MAKE) -C csrc check

# The extension under ThreadSanitizer on the free-threaded CPython's TSan
# build: CPython's lock_tests and the parallel and stress tests; any report
# outside tools/tsan-suppressions.txt fails (see tools/tsan).
tsan:
	tools/tsan

# Install the pinned lint tools (tools/lint-requirements.txt), then run ruff
# with the rules in pyproject.toml and mypy over the package.
lint:
	$(RUN) -m pip install --quiet -r tools/lint-requirements.txt \
	  && "$$py" -m ruff check src tests bench docs setup.py && MYPYPATH=src "$$py" -m mypy src/fastsync tests/check_types.py

clean:
	rm -rf build dist docs/_build src/*.egg-info src/fastsync/_compiled.c bench/_bench_floor.c src/fastsync/*.so src/fastsync/*.html
	sh tools/project-python --remove
	-$(MAKE) -C csrc clean
