"""A user's picture, whatever its size, colours and background, made into a data set's image."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib import image as mpl_image

from dlscratch.images import prepare_image, read_image


def _stroke(height: int = 60, width: int = 40) -> np.ndarray:
    """A dark vertical bar, thicker at the bottom, on a white page: (H, W) grey in [0, 1]."""
    page = np.ones((height, width))
    page[10:50, 18:22] = 0.0
    page[40:50, 14:26] = 0.0
    return page


def test_a_dark_drawing_on_white_becomes_light_ink_on_black_fitted_and_centred_by_mass():
    image = prepare_image(_stroke(), "mnist")
    assert image.shape == (28, 28) and image.dtype == np.float32
    assert image.min() == 0.0 and image.max() == pytest.approx(1.0)
    assert image[0].max() == 0 and image[:, 0].max() == 0  # the background is black
    rows = np.nonzero(image > 0.1)[0]
    assert rows.max() - rows.min() + 1 == 20  # the longer side fitted into 20 pixels, as MNIST's
    centre = [np.average(np.arange(28), weights=image.sum(axis=1 - axis)) for axis in (0, 1)]
    np.testing.assert_allclose(centre, 13.5, atol=0.5)  # centre of mass at the middle


def test_fashion_style_fits_the_box_into_28_and_centres_it():
    image = prepare_image(1.0 - _stroke(), "fashion-mnist")  # light on dark: kept as it is
    rows, cols = np.nonzero(image > 0.1)
    assert (rows.min(), rows.max()) == (0, 27)
    assert cols.min() + cols.max() == pytest.approx(27, abs=1)


def test_a_data_set_image_comes_back_as_itself():
    """An MNIST-like digit already 20 pixels high, centred by mass, is left as it was."""
    digit = np.zeros((28, 28))
    digit[4:24, 12:16] = 1.0
    np.testing.assert_allclose(prepare_image(digit, "mnist"), digit, atol=1e-6)


@pytest.mark.parametrize(
    ("grey", "style", "message"),
    [
        (np.ones((10, 10)), "mnist", "holds no drawing"),
        (np.zeros(10), "mnist", r"expected a grey picture \(H, W\)"),
        (np.zeros((5, 5)), "cifar", "unknown image style 'cifar'"),
    ],
)
def test_pictures_it_cannot_prepare_are_refused(grey, style, message):
    with pytest.raises(ValueError, match=message):
        prepare_image(grey, style)


def test_read_image_turns_colour_and_transparency_into_grey(tmp_path):
    page = _stroke()
    rgba = np.zeros((*page.shape, 4))
    rgba[..., :3] = 0.2  # dark ink everywhere, shown only where opaque
    rgba[..., 3] = 1.0 - page  # the bar opaque, the page transparent
    mpl_image.imsave(tmp_path / "drawn.png", rgba)
    grey = read_image(tmp_path / "drawn.png")
    assert grey.shape == page.shape
    assert grey[0, 0] == pytest.approx(1.0) and grey[30, 20] == pytest.approx(0.2, abs=0.01)
    np.testing.assert_allclose(prepare_image(grey, "mnist") > 0.5, prepare_image(page, "mnist") > 0.5)
    rgb = np.repeat(page[..., None], 3, axis=2)
    rgb[..., 0] = 1.0  # a red bar: its grey is 0.299
    mpl_image.imsave(tmp_path / "red.png", rgb)
    assert read_image(tmp_path / "red.png")[30, 20] == pytest.approx(0.299, abs=0.01)


def test_read_image_refuses_a_file_that_is_no_picture(tmp_path):
    (tmp_path / "notes.png").write_text("not a picture")
    with pytest.raises(ValueError, match=r"notes\.png is not a picture dlscratch can read"):
        read_image(tmp_path / "notes.png")
