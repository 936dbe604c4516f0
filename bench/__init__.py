"""Benchmarks: this project side by side with APScheduler 3.11 and 4.0, in one run.

Run on demand (never in the test suite): ``python -m bench`` or ``python -m bench --quick``.
"""
