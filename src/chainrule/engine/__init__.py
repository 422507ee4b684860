"""The engine, the bottom layer: Tensor and its reverse walk (``tensor``, ``autograd``, with the
record of in-place changes in ``versions``), the gates with forward and backward side by side
(``gates``: the contract and the textbook gates; ``shaping``; ``fused``), the array helpers they
share (``arrays``), gradient checking (``gradcheck``) and chainrule's errors (``errors``). It
imports nothing of chainrule's above it."""
