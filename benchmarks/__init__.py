"""Benchmarks: run one with ``python -m benchmarks.<name>`` (see each module's ``--help``)."""
