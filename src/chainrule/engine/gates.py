"""The textbook gates, simplest first, forward and backward side by side: ``Gate`` (the contract),
binary arithmetic with broadcasting (add, sub, mul, div, max), then one-input functions (neg,
pow, exp, log, relu, sigmoid, tanh). Shape-changing gates (sum, mean, reshape, transpose, matmul)
are in ``shaping``; the fused gates of a training step in ``fused``. Gates know nothing of Tensors
or of the rest of the graph, so each is checkable alone against finite differences.
Each gate computes in its inputs' array module (``backend.namespace``: NumPy, CuPy, array API).
"""

from __future__ import annotations

import numpy as np

from chainrule.engine.arrays import broadcast_shape, relu, unbroadcast, zero_d
from chainrule.engine.backend import namespace, quiet

Array = np.ndarray  # (or any array API array)


class Gate:
    """One node of the graph: ``forward`` computes and caches, ``backward`` maps ``dout`` to one
    gradient per input. The whole contract:

    - ``forward(*xs)`` takes arrays and returns one array (a view of an input only where the gate
      says ``view_of``). It keeps on ``self`` only what its gradient needs, as PyTorch saves the
      minimum (exp, sigmoid and tanh keep their output), and raises ShapeError for inputs that
      do not fit, naming the gate and the shapes.
    - ``backward(dout)``: dout has the output's shape and is never modified. It returns a tuple,
      one entry per input in input order: an array of that input's shape and dtype, or None for
      an input whose ``needs_input_grad`` entry is False (the work may be skipped). The arrays
      are new, or dout itself, or views of dout (add hands dout to both inputs); never an
      input's array, nor one array for two inputs unless it is dout or a view of it.
    - The engine owns accumulation: ``Tensor.backward`` stores the first gradient a tensor gets
      and adds later ones out of place. A leaf gets its own writable array: for dout, a view or
      a read-only array the engine stores a copy, so editing ``p.grad`` in place cannot change
      another gradient.
    - ``needs_input_grad`` (set by the engine; PyTorch's name): which inputs want a gradient
      (None: all). The data batch wants none: skipping its dx saves one of the six matrix
      products of a 2-layer step.
    - ``saved_inputs``: the inputs whose arrays backward uses (None: all, the safe default;
      ``()`` for gates that keep shapes or their own output). ``Tensor.backward`` refuses
      (ChainruleError) a graph in which one of those was changed in place after the forward pass
      (``Tensor.mark_modified``). ``view_of``: the input the output may be a view of (reshape,
      transpose), so a change of that input counts as a change of the output.
    - ``release()`` clears everything the instance holds (its ``__dict__``: the cache, shapes,
      ``needs_input_grad``, the constructor's arguments). The engine calls it once backward has
      run, or when no gradient reached the gate: an instance serves one call.

    Example, a gate for x**2 (``Pow(2.0)`` is the real one)::

        class Square(Gate):
            name = "square"
            def forward(self, x):
                self.x = x  # the cache: what the local gradient 2x needs
                return x * x
            def backward(self, dout):
                return (dout * (2 * self.x),)  # a tuple: one gradient per input
    """

    name = "gate"
    needs_input_grad: tuple[bool, ...] | None = None  # None: all of them
    saved_inputs: tuple[int, ...] | None = None  # kept for backward; None: all of them
    view_of: int | None = None  # the input the output may be a view of

    def forward(self, *xs: Array) -> Array:
        """The output for inputs ``xs`` (shapes as the gate's docstring says)."""
        raise NotImplementedError

    def needs(self, i: int) -> bool:
        """Whether input ``i`` wants a gradient (True unless the engine said otherwise)."""
        return self.needs_input_grad is None or self.needs_input_grad[i]

    def backward(self, dout: Array) -> tuple[Array | None, ...]:
        """One gradient per input for the upstream gradient ``dout`` (the output's shape)."""
        raise NotImplementedError

    def release(self) -> None:
        """Drop the cache once backward has run (a gate serves one call)."""
        self.__dict__.clear()

    def describe(self) -> str:
        """Short label for tables and drawings, e.g. ``mul`` or ``pow 2``."""
        return self.name


class _SignedSum(Gate):
    """out = a + sign * b, for Add and Sub: local gradients 1 and sign. The gate routes dout
    unchanged to a, and with b's sign to b."""

    saved_inputs = ()  # keeps no input array
    sign = 1

    def forward(self, a: Array, b: Array) -> Array:
        broadcast_shape(self.name, a, b)
        self.a_shape, self.b_shape = a.shape, b.shape
        return zero_d(a + b if self.sign > 0 else a - b)

    def backward(self, dout: Array) -> tuple[Array, Array]:
        db = dout if self.sign > 0 else zero_d(-dout)
        return unbroadcast(dout, self.a_shape), unbroadcast(db, self.b_shape)


class Add(_SignedSum):
    """out = a + b. Local gradients 1 and 1: the gate routes dout unchanged to both inputs."""

    name = "add"


class Sub(_SignedSum):
    """out = a - b. Local gradients 1 and -1."""

    name = "sub"
    sign = -1


class Mul(Gate):
    """out = a * b. Each input's local gradient is the other input: the gate 'swaps' them."""

    name = "mul"

    def forward(self, a: Array, b: Array) -> Array:
        broadcast_shape(self.name, a, b)
        self.a, self.b = a, b
        return zero_d(a * b)

    def backward(self, dout: Array) -> tuple[Array | None, Array | None]:
        a, b = self.a, self.b
        da = unbroadcast(zero_d(dout * b), a.shape) if self.needs(0) else None
        db = unbroadcast(zero_d(dout * a), b.shape) if self.needs(1) else None
        return da, db


class Div(Gate):
    """out = a / b. d/da = 1/b, d/db = -a/b**2."""

    name = "div"

    def forward(self, a: Array, b: Array) -> Array:
        broadcast_shape(self.name, a, b)
        self.a, self.b = a, b
        return zero_d(a / b)

    def backward(self, dout: Array) -> tuple[Array, Array]:
        a, b = self.a, self.b
        da = zero_d(dout / b)
        return unbroadcast(da, a.shape), unbroadcast(zero_d(-da * a / b), b.shape)


class Maximum(Gate):
    """out = max(a, b) elementwise. The larger input gets dout, the other 0. On a tie the
    gradient goes to ``b``, so ``maximum(x, 0)`` agrees with ``relu(x)``: derivative 0 at 0."""

    name = "max"
    saved_inputs = ()  # keeps no input array

    def forward(self, a: Array, b: Array) -> Array:
        broadcast_shape(self.name, a, b)
        self.a_wins = a > b
        self.a_shape, self.b_shape = a.shape, b.shape
        return zero_d(namespace(a, b).maximum(a, b))

    def backward(self, dout: Array) -> tuple[Array, Array]:
        xp, zero = namespace(dout), namespace(dout).zeros((), dtype=dout.dtype)
        da = xp.where(self.a_wins, dout, zero)
        db = xp.where(self.a_wins, zero, dout)
        return unbroadcast(da, self.a_shape), unbroadcast(db, self.b_shape)


class Neg(Gate):
    """out = -x. Local gradient -1."""

    name = "neg"
    saved_inputs = ()  # keeps no input array

    def forward(self, x: Array) -> Array:
        return zero_d(-x)

    def backward(self, dout: Array) -> tuple[Array]:
        return (zero_d(-dout),)


class Pow(Gate):
    """out = x ** p for a constant p. d/dx = p * x**(p-1).

    p = 0: out is the constant 1, so d/dx = 0 everywhere, x = 0 included, where the formula
    would give 0 * inf = NaN (PyTorch returns 0 too). For every other p the formula's IEEE values
    are the true derivative or its limit: 1 at x = 0 for p = 1 (0**0 = 1); 0 at x = 0 for p > 1;
    inf at x = 0 for 0 < p < 1 (x**0.5 is vertical there); exact at negative x for an integer p;
    NaN at negative x for a non-integer p, where the value x**p is NaN as well.
    """

    name = "pow"

    def __init__(self, exponent: float) -> None:
        self.exponent = exponent

    def describe(self) -> str:
        return f"pow {self.exponent:g}"

    def forward(self, x: Array) -> Array:
        self.x = x
        return zero_d(x**self.exponent)

    def backward(self, dout: Array) -> tuple[Array]:
        p = self.exponent
        if p == 0:
            return (namespace(self.x).zeros_like(self.x),)
        return (zero_d(dout * (p * self.x ** (p - 1))),)


class Exp(Gate):
    """out = e**x. The local gradient is the output itself, so that is all the cache holds."""

    name = "exp"
    saved_inputs = ()  # keeps its output, not its input

    def forward(self, x: Array) -> Array:
        self.out = zero_d(namespace(x).exp(x))
        return self.out

    def backward(self, dout: Array) -> tuple[Array]:
        return (zero_d(dout * self.out),)


class Log(Gate):
    """out = ln(x). d/dx = 1/x."""

    name = "log"

    def forward(self, x: Array) -> Array:
        self.x = x
        return zero_d(namespace(x).log(x))

    def backward(self, dout: Array) -> tuple[Array]:
        return (zero_d(dout / self.x),)


class ReLU(Gate):
    """out = max(x, 0). d/dx = 1 where x > 0, else 0; at the kink x = 0 we take 0 (a
    subgradient, PyTorch's choice too). The cache is the output, which says where x > 0."""

    name = "relu"
    saved_inputs = ()  # keeps its output, not its input

    def forward(self, x: Array) -> Array:
        self.out = zero_d(relu(x))
        return self.out

    def backward(self, dout: Array) -> tuple[Array]:
        # a product, not a where (NaN * 0 stays NaN); the mask as floats (the standard's rule)
        return (zero_d(dout * namespace(dout).astype(self.out > 0, dout.dtype)),)


class Sigmoid(Gate):
    """out = 1 / (1 + e**-x). d/dx = out * (1 - out) = sigmoid(x) * sigmoid(-x).

    Both tails keep their relative precision: with e = e**-|x| (never overflows), sigmoid(|x|) =
    1 / (1 + e) and sigmoid(-|x|) = e / (1 + e), so sigmoid(-40) is 4.2484e-18, not 0, and
    log(sigmoid(x)) is finite until sigmoid(x) underflows (x < -745 in float64, -104 in float32).
    The complement sigmoid(-x) is cached beside the output for the derivative: 1 - out rounds to
    0 from x = 37 (float64; 17 in float32), where the true derivative is e**-x.
    """

    name = "sigmoid"
    saved_inputs = ()  # keeps its output, not its input

    def forward(self, x: Array) -> Array:
        xp = namespace(x)
        with quiet(xp, under="ignore"):  # e**-|x| underflowing to 0 is the right value
            e = xp.exp(-xp.abs(x))
            big = 1 / (1 + e)  # sigmoid(|x|), in [0.5, 1]
            small = e * big  # sigmoid(-|x|), in [0, 0.5]
        positive = x >= 0  # (False for NaN: NaN either way)
        self.out = zero_d(xp.where(positive, big, small))
        self.complement = xp.where(positive, small, big)  # sigmoid(-x) = 1 - out, exactly
        return self.out

    def backward(self, dout: Array) -> tuple[Array]:
        with quiet(namespace(dout), under="ignore"):  # a tail's tiny derivative may round to 0
            return (zero_d(dout * (self.out * self.complement)),)


class Tanh(Gate):
    """out = tanh(x). d/dx = 1 - out**2.

    From |x| = 19 (float64; 10 in float32) tanh(x) rounds to +-1 and 1 - out**2 is 0 while
    sech(x)**2 is below the float's epsilon. 0 is then the exact derivative of the function as
    computed (the constant +-1), and the lost digits lie below the float's resolution of tanh's
    largest slope (1, at 0): keeping them would cost an exp per unit in every backward, for
    nothing a following gate can use. (Sigmoid's lower tail is different: see ``Sigmoid``.)
    """

    name = "tanh"
    saved_inputs = ()  # keeps its output, not its input

    def forward(self, x: Array) -> Array:
        self.out = zero_d(namespace(x).tanh(x))
        return self.out

    def backward(self, dout: Array) -> tuple[Array]:
        return (zero_d(dout * (1 - self.out**2)),)
