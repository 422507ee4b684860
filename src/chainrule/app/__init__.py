"""The application, the top layer: the command line (``cli``, the entry point, and ``commands``,
one module per command), a training run from settings to a folder on disk (``experiment``,
``runfolders``), predictions on image files (``predict``) and the gradient check of a model a run
config names (``modelcheck``)."""
