import numpy as np
import pytest
import torch
from skimage.color import lab2rgb, rgb2lab

from ganforge.data.color import lab_to_network, lab_to_rgb, network_to_lab, rgb_to_lab
from ganforge.data.images import sample_photo


def test_rgb_to_lab_matches_scikit_image_on_a_photo():
    photo = sample_photo("coffee")[::4, ::4] / 255.0
    ours = rgb_to_lab(torch.from_numpy(photo).permute(2, 0, 1)[None]).squeeze(0).permute(1, 2, 0).numpy()
    np.testing.assert_allclose(ours, rgb2lab(photo), atol=2e-3)


def test_known_colours():
    white_black = torch.tensor([[1.0, 1.0, 1.0], [0.0, 0.0, 0.0]]).T.reshape(1, 3, 1, 2)
    lab = rgb_to_lab(white_black)
    # White is (100, 0, 0) up to the 4-digit rounding of the sRGB matrix (a, b within 0.005).
    torch.testing.assert_close(lab[0, :, 0, 0], torch.tensor([100.0, 0.0, 0.0]), atol=1e-2, rtol=0)
    torch.testing.assert_close(lab[0, :, 0, 1], torch.zeros(3), atol=1e-4, rtol=0)
    red = rgb_to_lab(torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1)).flatten()
    # sRGB red in CIE Lab (D65): about (53.24, 80.09, 67.20).
    torch.testing.assert_close(red, torch.tensor([53.24, 80.09, 67.20]), atol=0.02, rtol=0)


def test_round_trip_recovers_the_photo():
    rgb = torch.rand(4, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(lab_to_rgb(rgb_to_lab(rgb)), rgb, atol=1e-4, rtol=0)


def test_lab_to_rgb_matches_scikit_image_and_clips_out_of_gamut():
    lab = torch.tensor([[60.0, 20.0, -30.0], [30.0, -10.0, 5.0], [50.0, 120.0, 120.0]]).T.reshape(1, 3, 1, 3)
    ours = lab_to_rgb(lab)[0].permute(1, 2, 0).numpy()
    with pytest.warns(UserWarning):  # skimage warns about the out-of-gamut colour
        reference = lab2rgb(lab[0].permute(1, 2, 0).numpy().astype(np.float64))
    np.testing.assert_allclose(ours, reference, atol=2e-3)
    assert ours.min() >= 0 and ours.max() <= 1


def test_network_scaling_is_pix2pix_and_inverts():
    lab = torch.tensor([100.0, 110.0, -55.0]).view(1, 3, 1, 1)
    lightness, ab = lab_to_network(lab)
    torch.testing.assert_close(lightness.flatten(), torch.tensor([1.0]))
    torch.testing.assert_close(ab.flatten(), torch.tensor([1.0, -0.5]))
    torch.testing.assert_close(network_to_lab(lightness, ab), lab)


def test_conversion_is_differentiable_everywhere_in_range():
    rgb = torch.rand(2, 3, 8, 8).requires_grad_(True)
    with torch.no_grad():
        rgb[0, :, 0, 0] = 0.0  # black: the cube root and gamma curves meet their linear parts here
    rgb_to_lab(rgb).sum().backward()
    assert torch.isfinite(rgb.grad).all()
