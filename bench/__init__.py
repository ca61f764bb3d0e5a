"""Benchmarks for surreal-store: ``python -m bench [NAME ...] [--quick] [--json PATH]``.

Every headline figure is a ratio of two measurements taken in the same run (against the raw
SDK, SQLite or brute force), because these machines are noisy; raw timings are kept beside it.
"""
