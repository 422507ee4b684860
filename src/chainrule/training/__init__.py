"""Training, above ``nn`` and ``data``: the loop (``loop.fit``), its diagnostics, batch
augmentation, checkpoints and model files (``checkpoints``), and the one table of names and
settings that the command line, ``TrainConfig`` and ``fit`` check against (``config``)."""
