"""fastsync's benchmark suite; run it with `python bench/run.py`.

Modules: run (the script), cli (its options), cases (what is timed),
implementations (who is compared), runner (how samples are taken), report
(table, notes, JSON, plot), environment (what the run happened on) and targets
(the speed goals, checked with --targets).
"""
