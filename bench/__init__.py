"""Benchmarks for FiscoBridge Licensing: `make bench` (python -m bench.run)."""
