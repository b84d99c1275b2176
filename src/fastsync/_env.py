"""Environment switches read at import time.

setup.py reads FASTSYNC_NO_EXTENSIONS and FASTSYNC_REQUIRE_EXTENSIONS at build
time by the same rule (env_flag), with the names spelled in its own code: keep
the two in step."""

import os


def env_flag(name):
    """True when the variable is set to anything but '' or '0'."""
    return os.environ.get(name, "") not in ("", "0")


NO_EXTENSIONS = "FASTSYNC_NO_EXTENSIONS"
REQUIRE_EXTENSIONS = "FASTSYNC_REQUIRE_EXTENSIONS"
NO_SPIN = "FASTSYNC_NO_SPIN"
DEBUG = "FASTSYNC_DEBUG"   # fastsync.debug's settings: comma-separated words
