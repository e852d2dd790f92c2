"""Benchmarks of the token service (`make bench`, or `.venv/bin/python -m bench`).

Offline, on loopback: DynamoDB is a moto server started here (and dynalite when one is
installed). Every figure is a ratio against a baseline measured side by side in the same
run, so that a noisy two-core machine still gives comparable numbers. The run writes
docs/performance.md and never fails a build; tests/perf (`make perf`) asserts the same targets.
"""
