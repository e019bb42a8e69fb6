"""FID through a feature network the user supplies as a TorchScript file (never downloaded)."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from diffkit.domains.images.evaluate import frechet_distance
from diffkit.domains.images.fid import fid, load_feature_network, network_features
from diffkit.errors import DataError, MissingFileError


class StandIn(nn.Module):
    """A tiny Inception stand-in: (N, 3, H, W) in [0, 255] -> (N, 12) features."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 3, 5, stride=4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.adaptive_avg_pool2d(torch.relu(self.conv(x / 255.0)), 2).flatten(1)


class WithLogits(StandIn):
    """StyleGAN's convention: logits unless asked for ``return_features``."""

    def forward(self, x: torch.Tensor, return_features: bool = False) -> torch.Tensor:
        feats = F.adaptive_avg_pool2d(torch.relu(self.conv(x / 255.0)), 2).flatten(1)
        return feats if return_features else feats[:, :2]


def saved(module: nn.Module, path) -> str:
    torch.jit.save(torch.jit.script(module), str(path))
    return str(path)


def test_features_are_the_network_on_resized_rgb_images_in_0_255(tmp_path, digits):
    net = load_feature_network(saved(StandIn(), tmp_path / "f.pt"))
    images = digits.images[:10]  # (10, 1, 8, 8) in [-1, 1]
    x = F.interpolate(((images + 1) * 127.5).repeat(1, 3, 1, 1), size=(32, 32), mode="bilinear")
    with torch.no_grad():
        expected = StandIn()(x).double().numpy()  # the same seed-0 weights
    np.testing.assert_allclose(network_features(net, images, size=32), expected, rtol=1e-5)


def test_fid_is_zero_for_one_set_and_grows_with_noise(tmp_path, digits):
    net = load_feature_network(saved(StandIn(), tmp_path / "f.pt"))
    real = digits.images[:300]
    noisy = real + 0.5 * torch.randn(real.shape, generator=torch.Generator().manual_seed(0))
    assert fid(net, real, real, size=64) == pytest.approx(0.0, abs=1e-6)
    far = fid(net, real, noisy, size=64)
    reference = frechet_distance(
        network_features(net, real, size=64), network_features(net, noisy, size=64)
    )
    assert far > 0 and far == pytest.approx(reference)


def test_a_network_with_return_features_is_asked_for_them(tmp_path, digits):
    net = load_feature_network(saved(WithLogits(), tmp_path / "f.pt"))
    assert network_features(net, digits.images[:4], size=32).shape == (4, 12)


def test_bad_feature_networks_are_one_clear_error(tmp_path, digits):
    torch.save(StandIn().state_dict(), tmp_path / "state.pt")  # weights, not a network
    with pytest.raises(DataError, match=r"not a TorchScript or torch\.export feature network"):
        load_feature_network(tmp_path / "state.pt")
    (tmp_path / "text.pt").write_text("not an archive")
    with pytest.raises(DataError, match=r"not a TorchScript or torch\.export feature network"):
        load_feature_network(tmp_path / "text.pt")
    with pytest.raises(MissingFileError):
        load_feature_network(tmp_path / "missing.pt")

    class Flat(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.mean()

    net = load_feature_network(saved(Flat(), tmp_path / "flat.pt"))
    with pytest.raises(DataError, match=r"must return features \(N, D\)"):
        network_features(net, digits.images[:4], size=16)


def test_a_torch_export_program_gives_the_same_features(tmp_path, digits):
    batch = torch.export.Dim("batch", min=1, max=1024)
    program = torch.export.export(
        StandIn(), (torch.zeros(4, 3, 32, 32),), dynamic_shapes=({0: batch},)
    )
    torch.export.save(program, str(tmp_path / "f.pt2"))
    exported = load_feature_network(tmp_path / "f.pt2")
    scripted = load_feature_network(saved(StandIn(), tmp_path / "f.pt"))
    images = digits.images[:7]
    np.testing.assert_allclose(
        network_features(exported, images, size=32, batch_size=5),
        network_features(scripted, images, size=32),
        rtol=1e-5,
    )
