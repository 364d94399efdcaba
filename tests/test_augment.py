"""Image augmentation: shifts and flips move pixels as claimed, repeat with a seed, keep dtypes."""

from __future__ import annotations

import numpy as np
import pytest

from dlscratch.augment import Compose, RandomFlip, RandomShift, augmentation_from_config


def _shift_by_hand(image: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """image (C, H, W) with content moved down by dy and right by dx, zeros coming in."""
    out = np.zeros_like(image)
    _, height, width = image.shape
    for y in range(height):
        for x in range(width):
            if 0 <= y - dy < height and 0 <= x - dx < width:
                out[:, y, x] = image[:, y - dy, x - dx]
    return out


def test_each_image_is_one_of_the_allowed_shifts(rng):
    images = rng.integers(1, 255, (20, 2, 6, 7)).astype(np.uint8)
    shifted = RandomShift(max_shift=2, seed=0)(images)
    assert shifted.dtype == np.uint8 and shifted.shape == images.shape
    seen = set()
    for image, result in zip(images, shifted, strict=True):
        matches = [
            (dy, dx)
            for dy in range(-2, 3)
            for dx in range(-2, 3)
            if np.array_equal(result, _shift_by_hand(image, dy, dx))
        ]
        assert len(matches) == 1
        seen.add(matches[0])
    assert len(seen) > 5  # not one shift for all


def test_flattened_rows_are_shifted_as_images(rng):
    rows = rng.random((8, 2 * 5 * 5))
    as_images = RandomShift(max_shift=1, seed=3)(rows.reshape(8, 2, 5, 5))
    as_rows = RandomShift(max_shift=1, image_shape=(2, 5, 5), seed=3)(rows)
    np.testing.assert_array_equal(as_rows, as_images.reshape(8, -1))


def test_flips_mirror_about_half_the_images_left_to_right(rng):
    images = rng.random((400, 1, 3, 4))
    flipped = RandomFlip(seed=1)(images)
    mirrored = np.all(flipped == images[:, :, :, ::-1], axis=(1, 2, 3))
    kept = np.all(flipped == images, axis=(1, 2, 3))
    assert np.all(mirrored | kept) and 150 < mirrored.sum() < 250
    assert np.array_equal(RandomFlip(p=0.0, seed=1)(images), images)


def test_the_argument_is_left_alone_and_a_seed_repeats(rng):
    images = rng.random((5, 1, 6, 6))
    before = images.copy()
    first = Compose([RandomShift(seed=4), RandomFlip(seed=5)])(images)
    again = Compose([RandomShift(seed=4), RandomFlip(seed=5)])(images)
    np.testing.assert_array_equal(first, again)
    np.testing.assert_array_equal(images, before)


def test_configs_rebuild_the_augmentations():
    composed = Compose([RandomShift(max_shift=3, image_shape=(1, 28, 28)), RandomFlip(p=0.25)])
    rebuilt = augmentation_from_config(composed.config(), seed=0)
    assert rebuilt.config() == composed.config()
    with pytest.raises(ValueError, match="unknown augmentation"):
        augmentation_from_config({"name": "Rotate"})


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: RandomShift(max_shift=-1), "max_shift must be a whole number >= 0"),
        (lambda: RandomFlip(p=2), r"p must lie in \[0, 1\]"),
        (lambda: RandomShift(image_shape=(28, 28)), r"image_shape must be \(C, H, W\)"),
        (lambda: RandomShift()(np.zeros((3, 784))), r"expected images \(N, C, H, W\), or rows"),
    ],
)
def test_bad_settings_and_shapes_raise(build, message):
    with pytest.raises(ValueError, match=message):
        build()
