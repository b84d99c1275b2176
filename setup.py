"""Declares the compiled extension; all other metadata is in pyproject.toml.

The extension is optional: if it can't be compiled the install still succeeds
with the pure-Python backend, after a loud warning.  FASTSYNC_REQUIRE_EXTENSIONS=1
(or CIBUILDWHEEL=1) makes a failed compile an error instead, and
FASTSYNC_NO_EXTENSIONS=1 skips compiling altogether, and so does a Python
other than CPython.  FASTSYNC_C_BACKEND=posix
builds over the generic POSIX wait layer instead of the platform's own.
FASTSYNC_BENCH_FLOOR=1 also builds the benchmark's floor (see BENCH_FLOOR).

Cython translates the .pyx files only when the extensions are built, so
commands that need just the metadata or an sdist never run it.  Its compiler
directives, language_level among them, are all in CYTHON_DIRECTIVES below.
"""

import glob
import os
import platform
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


def env_flag(name):
    """True when the variable is set to anything but '' or '0'."""
    return os.environ.get(name, "") not in ("", "0")


# The switches src/fastsync/_env.py reads at import time, read by the same
# rule.  Spelled again rather than loaded from that file by path: a build
# script should not execute the package's modules before they are built.
REQUIRE_EXTENSIONS = env_flag("FASTSYNC_REQUIRE_EXTENSIONS") or env_flag("CIBUILDWHEEL")
SKIP_EXTENSIONS = env_flag("FASTSYNC_NO_EXTENSIONS") or platform.python_implementation() != "CPython"

# The benchmark's floor (bench/_bench_floor.pyx): empty methods of the same
# shapes as fastsync's, and hand-offs between two C threads over the same wait
# layer.  It is an extension of its own, so that users' fastsync._compiled
# carries no benchmark code, and it is declared here next to fastsync's, so
# that the same build makes both with the same compiler, flags and C layer
# (it is the floor fastsync is compared with).  Built only when asked for, as
# the Makefile's test and bench targets do: wheels and plain installs lack it.
BENCH_FLOOR = env_flag("FASTSYNC_BENCH_FLOOR")
BENCH_FLOOR_MODULE = "fastsync._bench_floor"

# For every .pyx here, so fastsync and the benchmark's floor get the same.
# always_allow_keywords=False makes methods without arguments METH_NOARGS and
# those with one required argument METH_O: the interpreter calls them on its
# cheapest paths.  freethreading_compatible declares that the module keeps
# no state the GIL has to guard (docs/design.md lists what guards each piece),
# so importing it on a free-threaded CPython leaves the GIL off; elsewhere it
# changes nothing.
CYTHON_DIRECTIVES = {
    "language_level": 3, "binding": False, "embedsignature": True, "embedsignature.format": "clinic",
    "boundscheck": False, "wraparound": False, "auto_pickle": False, "always_allow_keywords": False,
    "freethreading_compatible": True,
}

# FASTSYNC_C_BACKEND=posix builds over the generic POSIX wait layer instead of
# the platform's own (futex on Linux); csrc/fs_wait.h picks the default.
C_BACKEND_MACROS = {"futex": "FS_WAIT_FUTEX", "posix": "FS_WAIT_POSIX", "win32": "FS_WAIT_WIN32"}

BANNER = """
********************************************************************************
WARNING: fastsync's compiled extension could not be built:
    {error}
fastsync is installed with its pure-Python backend, which is much slower.
Install a C compiler and the Python headers, then reinstall to get the fast one;
set FASTSYNC_REQUIRE_EXTENSIONS=1 to make this an error instead.
********************************************************************************
"""


class OptionalBuildExt(build_ext):
    """build_ext that falls back to pure Python unless extensions are required."""

    def run(self):
        # Outside the fallback: an error from Cython is a fault in the
        # sources or a missing build requirement, not a missing compiler.
        self._cythonize()
        if not BENCH_FLOOR:
            # A floor left in build/ by an earlier build with the switch
            # would otherwise be packaged with this one.
            self._remove_built(BENCH_FLOOR_MODULE)
        try:
            super().run()
        except Exception as error:   # e.g. no compiler found at all
            self._fall_back(error, self.extensions)

    def _cythonize(self):
        # Cython runs here, when the extension is really built, and not when
        # setup.py is loaded: metadata and sdist commands load it too.
        pyx = [ext for ext in self.extensions if any(str(source).endswith(".pyx") for source in ext.sources)]
        if not pyx:
            return
        from Cython.Build import cythonize

        # src: where the floor's .pyx finds fastsync's declarations.
        translated = {ext.name: ext for ext in cythonize(pyx, include_path=["src"],
                                                         compiler_directives=CYTHON_DIRECTIVES)}
        for ext in pyx:
            # setuptools registered these Extension objects when it finalized
            # the command; keep them and take only the generated C file from
            # Cython's copies (so a "# distutils:" line in the .pyx would not
            # take effect).
            ext.sources = translated[ext.name].sources

    def build_extension(self, ext):
        # setuptools rebuilds only when a file changed, so switching
        # FASTSYNC_C_BACKEND would reuse the other wait layer's build.
        # A stamp of the macros in the build directory catches that.
        stamp = os.path.join(self.build_temp, ext.name + ".macros")
        macros = repr(sorted(ext.define_macros))
        force = self.force
        if not os.path.exists(stamp) or _read(stamp) != macros:
            self.force = True
        try:
            super().build_extension(ext)
        except Exception as error:   # compile or link failed
            self._fall_back(error, [ext])
        else:
            os.makedirs(self.build_temp, exist_ok=True)
            with open(stamp, "w") as file:
                file.write(macros)
        finally:
            self.force = force

    def _fall_back(self, error, extensions):
        if REQUIRE_EXTENSIONS:
            raise error
        # A module left in build/ by an earlier successful build would
        # otherwise be packaged as if this build had worked.
        for ext in extensions:
            self._remove_built(ext.name)
        if [ext.name for ext in extensions] == [BENCH_FLOOR_MODULE]:
            # Not fastsync's own extension, so no fallback banner: bench/run.py
            # runs without the floor and says so (and the floor's tests fail).
            message = f"\nWARNING: the benchmark's floor ({BENCH_FLOOR_MODULE}) could not be built: {error}\n"
        else:
            message = BANNER.format(error=error)
        sys.stderr.write(message)
        _to_terminal(message)


    def _remove_built(self, name):
        path = self.get_ext_fullpath(name)
        if os.path.exists(path):
            os.remove(path)


def _to_terminal(message):
    """Write message to the user's terminal too, when stderr is not it.

    pip captures a build's output and shows it only when the build fails or
    with -v, so a fallback banner on stderr alone goes unseen; the build still
    runs in the user's terminal session.  Without one (CI logs), the
    FallbackWarning at import is what the user sees."""
    if sys.stderr.isatty() or not hasattr(os, "O_NOCTTY"):
        return
    try:
        terminal = os.open("/dev/tty", os.O_WRONLY | os.O_NOCTTY)
    except OSError:   # no controlling terminal
        return
    try:
        os.write(terminal, message.encode("utf-8", "replace"))
    except OSError:
        pass
    finally:
        os.close(terminal)


def _read(path):
    with open(path) as file:
        return file.read()


def extensions():
    if SKIP_EXTENSIONS:
        return []
    macros = []
    backend = os.environ.get("FASTSYNC_C_BACKEND", "")
    if backend:
        if backend not in C_BACKEND_MACROS:
            sys.exit(f"FASTSYNC_C_BACKEND must be one of {sorted(C_BACKEND_MACROS)}, not {backend!r}")
        macros.append((C_BACKEND_MACROS[backend], "1"))
    # Every C file of csrc/ (not its tests) goes in; those for another
    # platform or wait layer compile to nothing.
    c_sources = sorted(glob.glob(os.path.join("csrc", "*.c")))
    pyx_files = {"fastsync._compiled": "src/fastsync/_compiled.pyx"}
    if BENCH_FLOOR:
        pyx_files[BENCH_FLOOR_MODULE] = "bench/_bench_floor.pyx"
    # Each .pyx is translated by OptionalBuildExt; a failed compile falls back
    # to pure Python there too.
    return [Extension(
        name,
        sources=[pyx] + c_sources,
        include_dirs=["csrc"],
        # Rebuild when any C file or header changes (setuptools only tracks sources).
        depends=sorted(glob.glob(os.path.join("csrc", "*.[ch]"))),
        define_macros=macros,
    ) for name, pyx in pyx_files.items()]


setup(ext_modules=extensions(), cmdclass={"build_ext": OptionalBuildExt})
