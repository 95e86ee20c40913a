"""Benchmarks of the study's speed and memory targets (issue 5), run on demand, never in CI.

``python -m bench`` (full: 1M x 768 synthetic vectors) or ``python -m bench --quick``. Every
target prints one line ``TARGET <name> <measured> <goal> PASS|FAIL``, a ratio against a baseline
measured in the same invocation, on the same machine and the same data. Heavy phases run in child
processes so that each one's peak RSS is its own.
"""
