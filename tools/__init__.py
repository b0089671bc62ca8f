"""Developer tooling on top of DVC and CML: the freshness gate, the smoke run, the PR report.

Not part of the aezoo library: these modules import ``aezoo``, never the reverse. Run them
from the repository root through make (``make check-fresh``, ``make smoke``, ``make
pr-report``) or as ``python -m tools.<module>``.
"""
