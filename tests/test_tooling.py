"""The make targets never delete or rewrite a virtual environment they did not
make (tools/project-python picks the one they run in)."""

import os
import re
import shutil
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAKE = shutil.which("make")

pytestmark = pytest.mark.skipif(os.name != "posix" or MAKE is None,
                                reason="the make targets need make and a POSIX shell")


def _outside_a_venv(python):
    try:
        result = subprocess.run([python, "-c", "import sys; print(sys.prefix == sys.base_prefix)"],
                                capture_output=True, text=True, timeout=30)
    except OSError:
        return False
    return result.stdout.strip() == "True"


def base_interpreter():
    """This Python's own installation, outside any virtual environment: the
    make targets make .venv only from one of those."""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    candidates = [getattr(sys, "_base_executable", ""), sys.executable] + [
        os.path.join(sys.base_prefix, "bin", name) for name in (f"python{version}", "python3", "pypy3")]
    for candidate in candidates:
        if candidate and os.path.isfile(candidate) and _outside_a_venv(candidate):
            return candidate
    pytest.fail(f"no interpreter outside a virtual environment among {candidates}")


def make_targets():
    with open(os.path.join(REPO, "Makefile")) as makefile:
        phony = re.search(r"^\.PHONY:(.*)$", makefile.read(), re.MULTILINE)
    return phony.group(1).split()


@pytest.fixture
def checkout(tmp_path):
    """The Makefile and its tools, without the sources: every target that
    gets past choosing its environment fails at once, so nothing is built."""
    shutil.copy(os.path.join(REPO, "Makefile"), tmp_path)
    shutil.copytree(os.path.join(REPO, "tools"), tmp_path / "tools")
    return tmp_path


def run_make(checkout, target, python):
    env = {key: value for key, value in os.environ.items() if not key.startswith("MAKE")}
    return subprocess.run([MAKE, "-s", target, f"PYTHON={python}"], cwd=checkout, env=env,
                          capture_output=True, text=True, timeout=120)


def snapshot(directory):
    """Every file under directory with its contents."""
    files = {}
    for root, _, names in os.walk(directory):
        for name in names:
            path = os.path.join(root, name)
            if not os.path.islink(path):
                with open(path, "rb") as file:
                    files[os.path.relpath(path, directory)] = file.read()
    return files


def test_a_hand_made_venv_survives_every_target(checkout):
    python = base_interpreter()
    venv = checkout / ".venv"
    # Made the way a user would, with a package of theirs installed by hand
    # (no pip in it, so a target that uses it fails before installing).
    subprocess.run([python, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    purelib = subprocess.run([str(venv / "bin" / "python"), "-c",
                              "import sysconfig; print(sysconfig.get_path('purelib'))"],
                             capture_output=True, text=True, check=True, timeout=30).stdout.strip()
    with open(os.path.join(purelib, "users_package.py"), "w") as module:
        module.write("ANSWER = 42\n")
    before = snapshot(venv)
    for target in make_targets():
        result = run_make(checkout, target, python)
        assert snapshot(venv) == before, (target, result.stderr)
    assert subprocess.run([str(venv / "bin" / "python"), "-c", "import users_package"],
                          timeout=30).returncode == 0


def test_a_venv_for_another_interpreter_is_left_with_a_message(checkout):
    # A .venv that does not run PYTHON's interpreter (here: not a working one
    # at all) is neither used nor replaced: the target stops and says why.
    venv = checkout / ".venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "notes.txt").write_text("mine\n")
    before = snapshot(venv)
    for target in make_targets():
        result = run_make(checkout, target, base_interpreter())
        assert snapshot(venv) == before, (target, result.stderr)
        # check-c needs no Python, and make tsan keeps its own environment
        # (made from the ThreadSanitizer interpreter, under build/).
        if target not in ("clean", "check-c", "tsan"):
            assert result.returncode != 0
            assert "was not made by fastsync's make targets" in result.stderr, (target, result.stderr)
            assert "PYTHON=.venv/bin/python" in result.stderr


def project_python(checkout, *arguments):
    return subprocess.run(["sh", "tools/project-python", *arguments], cwd=checkout,
                          capture_output=True, text=True, timeout=300)


def test_the_targets_own_venv_is_marked_remade_and_removed(checkout):
    python = base_interpreter()
    result = project_python(checkout, python)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ".venv/bin/python"
    (marker,) = [name for name in os.listdir(checkout / ".venv") if name.startswith("made-by")]
    # Made from another interpreter (as the marker now says): made again.
    (checkout / ".venv" / marker).write_text("another interpreter\n")
    (checkout / ".venv" / "stale").write_text("")
    result = project_python(checkout, python)
    assert result.returncode == 0, result.stderr
    assert "making .venv again" in result.stderr
    assert not (checkout / ".venv" / "stale").exists()
    assert (checkout / ".venv" / marker).read_text() != "another interpreter\n"
    # A PYTHON that runs in a virtual environment is used as it is.
    assert project_python(checkout, ".venv/bin/python").stdout.strip() == ".venv/bin/python"
    result = run_make(checkout, "clean", python)
    assert not (checkout / ".venv").exists(), result.stderr
