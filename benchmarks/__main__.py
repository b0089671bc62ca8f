"""``python -m benchmarks``: the benchmark's command (:mod:`benchmarks.run`)."""

from benchmarks.run import main

main()
