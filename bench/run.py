"""Run fastsync's benchmark: `python bench/run.py --help`.

fastsync itself is imported from wherever Python finds it (the installed
package, or src/ with PYTHONPATH=src after an in-place build).
"""

import os
import sys

if __name__ == "__main__":
    # Make this directory importable as the package `bench`, instead of making
    # its modules importable one by one under their bare names.
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    from bench.cli import main

    sys.exit(main())
