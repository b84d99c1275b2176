"""Environment switches, read the same way at build time and at import time.

setup.py loads this file by path, so it must not import anything from the
package."""

import os


def env_flag(name):
    """True when the variable is set to anything but '' or '0'."""
    return os.environ.get(name, "") not in ("", "0")


NO_EXTENSIONS = "FASTSYNC_NO_EXTENSIONS"
REQUIRE_EXTENSIONS = "FASTSYNC_REQUIRE_EXTENSIONS"
NO_SPIN = "FASTSYNC_NO_SPIN"
