"""Data augmentation for image batches: random shifts and horizontal flips, in NumPy.

Each augmentation takes a batch and returns a new, randomly altered batch of the same
shape and dtype, leaving its argument alone. Images are (N, C, H, W), or flattened rows
(N, C * H * W) when ``image_shape`` (C, H, W) says how to read them. An augmentation
holds its own generator (``rng``), so a seeded run repeats and a checkpoint can save it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__ = ["Augmentation", "Compose", "RandomFlip", "RandomShift", "augmentation_from_config"]


@dataclass
class Augmentation:
    """Base of the augmentations: ``__call__(batch) -> batch``, its own generator, a config.

    The batch: images (N, C, H, W), or rows (N, C * H * W) with image_shape; the result:
    a new batch of the same shape and dtype.

    Parameters
    ----------
    image_shape : (int, int, int) or None, default None
        (C, H, W), to read a batch of rows (N, C * H * W) as images; None: batches must
        be (N, C, H, W).
    seed : int, np.random.Generator or None, default None
        Seeds the augmentation's own generator, ``rng`` (None: fresh entropy).

    Raises
    ------
    ValueError
        For an image_shape that is not three sizes >= 1.
    """

    # keyword-only, so that a subclass's own settings come first: RandomShift(2) shifts by 2
    image_shape: tuple[int, int, int] | None = field(default=None, kw_only=True)
    seed: Any = field(default=None, kw_only=True)
    rng: np.random.Generator = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng(self.seed)
        if self.image_shape is not None:
            self.image_shape = tuple(int(d) for d in self.image_shape)  # type: ignore[assignment]
            if len(self.image_shape) != 3 or min(self.image_shape) < 1:
                raise ValueError(f"image_shape must be (C, H, W) of positive sizes, got {self.image_shape!r}")

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        images = self._as_images(np.asarray(batch))
        return self.apply(images).reshape(np.shape(batch))

    def apply(self, images: np.ndarray) -> np.ndarray:
        """A new (N, C, H, W) batch from images (N, C, H, W)."""
        raise NotImplementedError

    def config(self) -> dict[str, Any]:
        """Name and settings, JSON-ready (the generator's state is saved apart)."""
        settings = {k: v for k, v in vars(self).items() if k not in ("rng", "seed")}
        if settings.get("image_shape") is not None:
            settings["image_shape"] = list(settings["image_shape"])
        return {"name": type(self).__name__, **settings}

    def _as_images(self, batch: np.ndarray) -> np.ndarray:
        if batch.ndim == 4:
            return batch
        if batch.ndim == 2 and self.image_shape is not None and batch.shape[1] == np.prod(self.image_shape):
            return batch.reshape(len(batch), *self.image_shape)
        raise ValueError(
            f"{type(self).__name__} expected images (N, C, H, W), or rows (N, C*H*W) with image_shape "
            f"given, got shape {batch.shape} (image_shape {self.image_shape})"
        )


@dataclass
class RandomShift(Augmentation):
    """Each image moved by a whole number of pixels, up to max_shift in each direction.

    The shifts (dy, dx) are drawn uniformly from [-max_shift, max_shift], one pair per
    image. (N, C, H, W) in, (N, C, H, W) out (or rows, with image_shape).

    Parameters
    ----------
    max_shift : int, default 2
        The largest shift in pixels, >= 0 (0: the batch as it is, copied).
    fill : float, default 0
        The value of the pixels moved in from outside (0: a black background, as MNIST's).
    image_shape : (int, int, int) or None, default None
        (C, H, W), to read a batch of rows (N, C * H * W) as images; None: batches must
        be (N, C, H, W).
    seed : int, np.random.Generator or None, default None
        Seeds the generator that draws the shifts (None: fresh entropy).

    Raises
    ------
    ValueError
        For a max_shift that is not a whole number >= 0, a fill that is not a number, or
        a bad image_shape.
    """

    max_shift: int = 2
    fill: float = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.max_shift, (int, np.integer)) or self.max_shift < 0:
            raise ValueError(f"max_shift must be a whole number >= 0, got {self.max_shift!r}")
        if isinstance(self.fill, bool) or not isinstance(self.fill, (int, float, np.number)):
            raise ValueError(f"fill must be a number, got {self.fill!r}")

    def apply(self, images: np.ndarray) -> np.ndarray:
        k = int(self.max_shift)
        n, _, height, width = images.shape
        if k == 0 or n == 0:
            return images.copy()
        padded = np.pad(images, ((0, 0), (0, 0), (k, k), (k, k)), constant_values=self.fill)
        # every (H, W) window of the padded image: window (k + dy, k + dx) is the image shifted
        # by (-dy, -dx); one gather picks each image's own window
        windows = sliding_window_view(padded, (height, width), axis=(2, 3))  # (N, C, 2k+1, 2k+1, H, W)
        offsets = self.rng.integers(0, 2 * k + 1, size=(2, n))
        return windows[np.arange(n), :, offsets[0], offsets[1]]


@dataclass
class RandomFlip(Augmentation):
    """Each image mirrored left to right with probability p (for garments, not for digits).

    (N, C, H, W) in, (N, C, H, W) out (or rows, with image_shape).

    Parameters
    ----------
    p : float, default 0.5
        The probability that an image is mirrored, in [0, 1].
    image_shape : (int, int, int) or None, default None
        (C, H, W), to read a batch of rows (N, C * H * W) as images; None: batches must
        be (N, C, H, W).
    seed : int, np.random.Generator or None, default None
        Seeds the generator that picks the images to mirror (None: fresh entropy).

    Raises
    ------
    ValueError
        For a p outside [0, 1] or a bad image_shape.
    """

    p: float = 0.5

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 <= self.p <= 1:
            raise ValueError(f"p must lie in [0, 1], got {self.p!r}")

    def apply(self, images: np.ndarray) -> np.ndarray:
        flipped = images.copy()
        chosen = self.rng.random(len(images)) < self.p
        flipped[chosen] = images[chosen, :, :, ::-1]
        return flipped


class Compose:
    """Augmentations applied one after the other.

    Parameters
    ----------
    augmentations : sequence of Augmentation
        Applied in this order, each to the batch the one before returned.
    """

    def __init__(self, augmentations: Sequence[Augmentation]) -> None:
        self.augmentations = list(augmentations)

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        for augmentation in self.augmentations:
            batch = augmentation(batch)
        return batch

    def config(self) -> dict[str, Any]:
        return {"name": "Compose", "augmentations": [a.config() for a in self.augmentations]}


_BY_NAME = {cls.__name__: cls for cls in (RandomShift, RandomFlip)}


def augmentation_from_config(config: Any, seed: Any = None) -> Augmentation | Compose:
    """The augmentation that ``config()`` described (seeded anew); ValueError if unknown."""
    if isinstance(config, dict) and config.get("name") == "Compose":
        parts = config.get("augmentations")
        if not isinstance(parts, list):
            raise ValueError(f"a Compose config needs a list of augmentations, got {parts!r}")
        seeds = np.random.SeedSequence(seed).spawn(len(parts)) if seed is not None else [None] * len(parts)
        return Compose([augmentation_from_config(part, s) for part, s in zip(parts, seeds, strict=True)])
    if not isinstance(config, dict) or config.get("name") not in _BY_NAME:
        raise ValueError(f"unknown augmentation {config!r}; known: {', '.join(sorted(_BY_NAME))}, Compose")
    settings = {key: value for key, value in config.items() if key != "name"}
    try:
        return _BY_NAME[config["name"]](**settings, seed=seed)
    except TypeError as error:
        raise ValueError(f"bad settings for {config['name']}: {error}") from None
