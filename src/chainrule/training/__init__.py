"""Training, above ``nn`` and ``data``: the loop (``loop.fit``) and its pieces (``epoch``: one
step, one epoch, checking accuracy), the hooks a run passes in (``hooks``, ``progress``: the
checkpoint, signals, progress, warnings, metrics), the run's state and checkpoint (``state``),
its record (``history``), its diagnostics, batch augmentation, model files (``checkpoints``),
and the one table of names and settings that the command line, ``TrainConfig`` and ``fit``
check against (``config``)."""
