"""The errors chainrule raises on purpose.

Every one carries a message that names the problem and what was expected, so the command line can
print it as one line. Each also derives from the built-in exception a Python user would try first
(``ValueError``, ``FileNotFoundError``...), so ``except ValueError`` keeps working.
"""

from __future__ import annotations


class ChainruleError(Exception):
    """Base of every error chainrule raises on purpose; its message is one line for the user."""


class ShapeError(ChainruleError, ValueError):
    """Array shapes that do not fit together (a gate's inputs, a model's input size)."""


class ExpressionError(ChainruleError, ValueError):
    """An expression for the circuit command that is not allowed or cannot be evaluated."""


class DataError(ChainruleError, ValueError):
    """Data that cannot be used: wrong dtype, NaN, labels out of range, a corrupt file."""


class DataNotFoundError(ChainruleError, FileNotFoundError):
    """A dataset or run folder that is not where it was looked for."""


class ChecksumError(ChainruleError, ValueError):
    """A downloaded or cached file whose checksum is not the published one."""


class ConfigError(ChainruleError, ValueError):
    """A setting out of its range or an unknown name (model, optimizer, activation...)."""


class DivergenceError(ChainruleError, FloatingPointError):
    """Training produced a NaN or infinite loss."""


class RunLockedError(ChainruleError, RuntimeError):
    """Another process is already writing to the run folder."""


class OutOfMemoryError(ChainruleError, MemoryError):
    """A model or data set too large for the memory available."""
