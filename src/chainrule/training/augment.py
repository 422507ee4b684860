"""Data augmentation: new training images made from old ones, drawn afresh every step.

A flipped photo of a cat is still a cat: showing the net mirrored copies of its training images
doubles what it sees for nothing, and for nets on raw pixels, which overfit early, that is worth
a few points of test accuracy.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from chainrule.engine.errors import ConfigError


class HorizontalFlip:
    """Mirror a random half of each batch left to right.

    image_shape: (H, W) or (H, W, C); mean, std: (D,) with D = H*W*C, the preprocessing's
    (None: 0 and 1). Raises ConfigError for an image_shape of another rank.

    Rows are preprocessed images, x = (raw / scale - mean) / std, flattened in (H, W[, C]) order.
    The mean image is not symmetric, so the flip is done on the raw image and preprocessed again:
    flip(x) * flip(std) / std + (flip(mean) - mean) / std, with both correction terms computed once.
    """

    def __init__(
        self,
        image_shape: Sequence[int],
        mean: np.ndarray | None = None,
        std: np.ndarray | None = None,
    ) -> None:
        if len(image_shape) not in (2, 3):
            raise ConfigError(f"flip needs images (H, W) or (H, W, C), got shape {image_shape}")
        self.image_shape = tuple(int(n) for n in image_shape)
        d = int(np.prod(self.image_shape))
        mean = np.zeros(d, np.float32) if mean is None else np.asarray(mean, np.float32)
        std = np.ones(d, np.float32) if std is None else np.asarray(std, np.float32)
        self.gain = (self._flip(std[None]) / std)[0]
        self.offset = ((self._flip(mean[None]) - mean) / std)[0]

    def _flip(self, X: np.ndarray) -> np.ndarray:
        images = X.reshape(len(X), *self.image_shape)
        return images[:, :, ::-1].reshape(len(X), -1)

    def __call__(self, X: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """X: a batch (B, D) of preprocessed rows (not modified). Returns a new (B, D) batch."""
        out = np.array(X)
        chosen = rng.random(len(X)) < 0.5
        if chosen.any():
            flipped = self._flip(X[chosen])
            flipped *= self.gain
            flipped += self.offset
            out[chosen] = flipped
        return out


# The names a run's settings may give (``config.SETTINGS["augment"]``): none, or HorizontalFlip.
AUGMENTATIONS = ("none", "flip")
