"""Your own images made MNIST-like (aezoo.digits): pure functions on synthetic drawings."""

import numpy as np
import pytest
from PIL import Image, ImageDraw
from scipy import ndimage

from aezoo.digits import BOX, SIDE, NoInkError, has_dark_ink, to_mnist


def drawing(size=(600, 400), box=(60, 40, 200, 340), dark_ink=True, pen=18) -> np.ndarray:
    """A '7' drawn with a pen into ``box`` (left, top, right, bottom) of a large canvas, as
    grey levels in [0, 1]: dark ink on white paper or light ink on black."""
    paper, ink = (255, 0) if dark_ink else (0, 255)
    image = Image.new("L", size, paper)
    left, top, right, bottom = box
    ImageDraw.Draw(image).line(
        [(left, top), (right, top), (left + (right - left) // 3, bottom)], fill=ink, width=pen
    )
    return np.asarray(image, dtype=np.float32) / 255.0


def ink_box(image: np.ndarray) -> tuple[int, int]:
    rows, cols = np.flatnonzero(image.any(axis=1)), np.flatnonzero(image.any(axis=0))
    return rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1


def test_an_off_centre_inverted_large_digit_comes_out_centred_like_mnist():
    """A dark-on-light 600x400 drawing in a corner: inverted to light on dark, its longer
    side scaled to 20 pixels, its centre of mass moved to MNIST's (14, 14)."""
    digit = to_mnist(drawing())
    image = digit.image
    assert digit.dark_ink
    assert image.shape == (SIDE, SIDE) and image.dtype == np.float32
    assert image.min() == 0.0 and image.max() == pytest.approx(1.0)
    assert max(ink_box(image)) == BOX
    centre = np.array(ndimage.center_of_mass(image))
    assert np.all(np.abs(centre - 14.0) <= 0.5 + 1e-9)  # whole-pixel shifts, as MNIST
    assert image[0].sum() == image[-1].sum() == 0  # a black field around the digit


def test_polarity_is_detected_and_both_polarities_give_the_same_digit():
    dark = to_mnist(drawing(dark_ink=True))
    light = to_mnist(drawing(dark_ink=False))
    assert dark.dark_ink and not light.dark_ink
    np.testing.assert_allclose(dark.image, light.image, atol=1e-5)
    with pytest.raises(NoInkError):  # forced wrong: white paper read as ink, nothing stands out
        to_mnist(drawing(dark_ink=True), ink="light")
    forced = to_mnist(drawing(dark_ink=True), ink="dark")
    np.testing.assert_array_equal(forced.image, dark.image)


def test_aspect_ratio_is_kept():
    """A narrow stroke stays narrow: only the longer side becomes 20 pixels."""
    tall = np.zeros((300, 300), np.float32)
    tall[40:260, 140:160] = 1.0  # a '1': 220 tall, 20 wide
    height, width = ink_box(to_mnist(tall).image)
    assert height == BOX and width <= 4


def test_an_mnist_like_digit_survives_upscaling_inversion_and_shading():
    """A 28x28 digit, enlarged 12 times, inverted, shaded unevenly and grained like a photo,
    comes back close to the original."""
    original = to_mnist(drawing(dark_ink=False)).image
    big = np.kron(original, np.ones((12, 12), np.float32))
    shading = np.linspace(0.0, 0.15, big.shape[1])[None, :]
    grain = np.random.default_rng(0).normal(0, 0.02, big.shape)
    photo = np.clip(1.0 - 0.8 * big - shading + grain, 0, 1)
    again = to_mnist(photo).image
    assert np.corrcoef(original.ravel(), again.ravel())[0, 1] > 0.9


def test_dust_does_not_widen_the_crop():
    clean = drawing()
    dusty = clean.copy()
    dusty[5:8, 590:593] = 0.0  # a black speck in the far corner of white paper
    np.testing.assert_allclose(to_mnist(dusty).image, to_mnist(clean).image, atol=1e-5)


@pytest.mark.parametrize("level", [0.0, 0.5, 1.0])
def test_a_blank_image_is_refused(level):
    with pytest.raises(NoInkError, match="no ink"):
        to_mnist(np.full((50, 80), level, np.float32))


def test_a_tiny_image_is_scaled_up():
    tiny = np.zeros((6, 5), np.float32)
    tiny[1:5, 2] = 1.0
    assert max(ink_box(to_mnist(tiny).image)) == BOX


def test_border_decides_the_polarity():
    assert has_dark_ink(drawing(dark_ink=True)) and not has_dark_ink(drawing(dark_ink=False))
