"""A picture drawn or photographed by a user, made to look like a data set's images.

MNIST's digits are white on black, their ink fitted into 20 x 20 pixels and centred by
its centre of mass in a 28 x 28 image; Fashion-MNIST's garments are white-ish on black,
trimmed and fitted into 28 x 28 pixels. A network trained on either expects exactly that,
so ``prepare_image`` turns any picture (any size, colour or not, dark on light or light on
dark) into it before ``dlscratch predict`` asks the network.
"""

from __future__ import annotations

import os

import numpy as np

__all__ = ["STYLES", "prepare_image", "read_image"]

#: How each data set's images were made: the side of the box the ink is fitted into, and
#: whether the ink is centred by its centre of mass (MNIST) or its bounding box.
STYLES = {"mnist": (20, True), "fashion-mnist": (28, False)}
SIDE = 28
_INK = 0.2  # a pixel at least this bright (once the background is dark) is part of the drawing


def read_image(path: str | os.PathLike[str]) -> np.ndarray:
    """The picture at path as grey levels.

    Parameters
    ----------
    path
        A PNG file (or any format Pillow reads: JPEG, BMP, ...).

    Returns
    -------
    numpy.ndarray
        float64 (H, W) in [0, 1], 0 black. Colour is weighted as the eye sees it
        (0.299 R + 0.587 G + 0.114 B); transparent pixels become the background the
        opaque ones stand out from.

    Raises
    ------
    ValueError
        When the file is not a picture.
    OSError
        When it cannot be read.
    """
    from matplotlib import image as mpl_image

    try:
        picture = np.asarray(mpl_image.imread(os.fspath(path)))
    except (SyntaxError, ValueError, TypeError) as error:  # what Pillow and matplotlib raise for non-pictures
        raise ValueError(f"{os.fspath(path)} is not a picture dlscratch can read ({error})") from None
    except OSError as error:
        if "cannot identify image file" in str(error):
            raise ValueError(f"{os.fspath(path)} is not a picture dlscratch can read") from None
        raise
    if picture.dtype.kind in "ui":
        picture = picture / np.iinfo(picture.dtype).max
    picture = picture.astype(np.float64)
    if picture.ndim == 2:
        return picture
    if picture.ndim != 3 or picture.shape[2] not in (2, 3, 4):
        raise ValueError(f"{os.fspath(path)}: unexpected picture shape {picture.shape}")
    colour, alpha = (picture[..., :-1], picture[..., -1]) if picture.shape[2] in (2, 4) else (picture, None)
    grey = colour[..., 0] if colour.shape[2] == 1 else colour @ np.array([0.299, 0.587, 0.114])
    if alpha is None:
        return grey
    opaque = alpha > 0.5
    background = 0.0 if opaque.any() and grey[opaque].mean() > 0.5 else 1.0
    return alpha * grey + (1 - alpha) * background


def prepare_image(grey: np.ndarray, style: str = "mnist") -> np.ndarray:
    """A grey picture made into one image of a data set, as that data set made its own.

    Parameters
    ----------
    grey
        (H, W) grey levels in [0, 1], e.g. from read_image.
    style
        "mnist" or "fashion-mnist" (see STYLES).

    Returns
    -------
    numpy.ndarray
        float32 (28, 28) in [0, 1]: light ink on a black background (a picture with a
        light border is inverted), trimmed to the ink, resized by area averaging to fit
        the style's box with its aspect ratio kept, and centred.

    Raises
    ------
    ValueError
        For an unknown style, a picture that is not 2-D, or one with no ink.
    """
    if style not in STYLES:
        raise ValueError(f"unknown image style {style!r}; known: {', '.join(STYLES)}")
    grey = np.asarray(grey, dtype=np.float64)
    if grey.ndim != 2 or min(grey.shape) < 1:
        raise ValueError(f"prepare_image expected a grey picture (H, W), got shape {grey.shape}")
    border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    if np.median(border) > 0.5:
        grey = 1.0 - grey  # dark ink on a light ground, as people draw: the data sets are the negative
    low = np.median(border) if np.median(border) <= 0.5 else 1.0 - np.median(border)
    grey = np.clip((grey - low) / max(1.0 - low, 1e-6), 0.0, 1.0)  # the background at 0
    rows, cols = np.nonzero(grey >= _INK)
    if len(rows) == 0:
        raise ValueError("the picture holds no drawing: every pixel is close to its background")
    grey = grey[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    box, by_mass = STYLES[style]
    scale = box / max(grey.shape)
    height, width = (max(1, round(side * scale)) for side in grey.shape)
    small = _resize(grey, height, width)
    if by_mass:
        # the ink's centre of mass onto the image's centre, 13.5 (pixels 0 to 27)
        centre_row = np.average(np.arange(height), weights=small.sum(axis=1))
        centre_col = np.average(np.arange(width), weights=small.sum(axis=0))
        top = int(np.clip(round(13.5 - centre_row), 0, SIDE - height))
        left = int(np.clip(round(13.5 - centre_col), 0, SIDE - width))
    else:
        top, left = (SIDE - height) // 2, (SIDE - width) // 2
    image = np.zeros((SIDE, SIDE), dtype=np.float32)
    image[top : top + height, left : left + width] = small
    return image


def _resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """image resized to (height, width), each new pixel the area-weighted mean of the old
    pixels it covers (no aliasing when shrinking a large photo)."""
    return _area_weights(height, image.shape[0]) @ image @ _area_weights(width, image.shape[1]).T


def _area_weights(new: int, old: int) -> np.ndarray:
    """(new, old): row i holds how much of old pixel j falls into new pixel i, normalised."""
    edges = np.linspace(0, old, new + 1)
    start, stop = edges[:-1, None], edges[1:, None]
    pixels = np.arange(old)[None, :]
    overlap = np.clip(np.minimum(stop, pixels + 1) - np.maximum(start, pixels), 0, None)
    return overlap / overlap.sum(axis=1, keepdims=True)
