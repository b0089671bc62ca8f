"""The benchmark (`make bench`): aezoo's trainer against the seeds' plain ``model.fit``.

For each variant one process builds the same model for every arm (same initial weights, same
random seeds) and trains the arms in turns, epoch by epoch, so machine noise hits them all:

* arm **a**, aezoo: ``EpochTrainer`` (arrays in memory as stored, one compiled step per
  epoch that gathers its batches in the graph) and ``compile_for_training`` (``FusedAdam``,
  the chosen ``jit_compile``), exactly as ``train_variant`` uses them; inference as the
  evaluate stage does it;
* arm **b**, the seeds and the speed baseline: ``model.fit(x, y, batch_size=..., epochs=1,
  shuffle=True)`` on float32 numpy arrays with Keras's own optimiser (``verbose=0``, so no
  progress bar handicaps it) and ``model.predict(x)``;
* arm **c**, the quality reference: b's ``model.fit``, on the same batches in the same order
  as a (see :class:`PlainFitArm`), so a's and c's validation losses differ only by what the
  trainers do, not by the luck of the shuffle.

Process-wide settings (threads, oneDNN: aezoo turns it on, see ``aezoo/__init__.py``) are
the same for every arm, so the ratio a/b measures the trainer alone.

Several aezoo settings can be compared in one run; each is an arm of its own. The report also
states FLOPs per training step (counted per layer), achieved GFLOP/s against the CPU's peak,
the time of a no-op ``dvc repro`` and the start-up time of every ``pipeline/*.py`` entry point.

Developer tooling, not part of the aezoo library: it imports ``aezoo``, never the reverse.
Modules: :mod:`~benchmarks.settings` (what is compared), :mod:`~benchmarks.machine`,
:mod:`~benchmarks.flops`, :mod:`~benchmarks.arms` (the interleaved training),
:mod:`~benchmarks.overheads` (start-up and DVC times), :mod:`~benchmarks.report`
(``reports/benchmarks.*``) and :mod:`~benchmarks.run` (the command).
"""
