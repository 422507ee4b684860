"""The engine, the bottom layer: Tensor and its reverse walk (``tensor``), the gates with forward
and backward side by side (``gates``), gradient checking (``gradcheck``), the BLAS calls the
optimizers use (``blas``) and chainrule's errors (``errors``). It imports nothing of chainrule's
above it."""
