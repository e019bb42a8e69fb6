import itertools

import numpy as np
import pytest
import scipy.linalg
import torch
from PIL import Image

from diffkit.domains.images.evaluate import (
    class_accuracy,
    feature_metrics,
    features,
    frechet_distance,
    frechet_distance_from_stats,
    make_grid,
    precision_recall,
    save_grid,
    train_classifier,
)
from diffkit.errors import DataError, ShapeError


@pytest.fixture(scope="module")
def classifier(digits_split):
    train, _ = digits_split
    return train_classifier(
        train.images,
        train.labels,
        steps=200,
        batch_size=64,
        generator=torch.Generator().manual_seed(0),
    )


def gaussian_feats(n=2000, d=8, seed=0):
    return np.random.default_rng(seed).normal(size=(n, d))


def test_fd_of_a_set_with_itself_is_zero_and_grows_with_noise():
    x = gaussian_feats()
    noise = np.random.default_rng(1).normal(size=x.shape)
    distances = [frechet_distance(x, x + s * noise) for s in (0.0, 0.1, 0.3, 1.0, 3.0)]
    assert distances[0] < 1e-8
    assert all(a < b for a, b in itertools.pairwise(distances))


def test_fd_matches_closed_form_for_gaussians():
    # Diagonal covariances: FD = |mu1 - mu2|^2 + sum (s1 + s2 - 2 sqrt(s1 s2)).
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, -1.0, 2.0])
    s1, s2 = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 0.25])
    closed = np.sum((mu1 - mu2) ** 2) + np.sum(s1 + s2 - 2 * np.sqrt(s1 * s2))
    assert frechet_distance_from_stats(mu1, np.diag(s1), mu2, np.diag(s2)) == pytest.approx(closed)
    # Non-commuting covariances against scipy's matrix square root.
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(5, 5)), rng.normal(size=(5, 5))
    c1, c2 = a @ a.T + np.eye(5), b @ b.T + np.eye(5)
    m1, m2 = rng.normal(size=5), rng.normal(size=5)
    ref = np.sum((m1 - m2) ** 2) + np.trace(c1 + c2 - 2 * scipy.linalg.sqrtm(c1 @ c2).real)
    assert frechet_distance_from_stats(m1, c1, m2, c2) == pytest.approx(ref, rel=1e-8)
    # And from samples: 1-D N(0, 1) vs N(2, 4) has FD = 4 + (1 - 2)^2 = 5.
    x, y = rng.normal(0, 1, size=(200_000, 1)), rng.normal(2, 2, size=(200_000, 1))
    assert frechet_distance(x, y) == pytest.approx(5.0, rel=0.02)


def test_fd_stays_real_where_sqrtm_goes_complex():
    # Fewer samples than dimensions: singular covariances, the case FID code patches up.
    x, y = gaussian_feats(n=20, d=64, seed=2), gaussian_feats(n=20, d=64, seed=3)
    cov1, cov2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    root = scipy.linalg.sqrtm(cov1 @ cov2)
    assert np.iscomplexobj(root) and np.abs(root.imag).max() > 0
    fd = frechet_distance(x, y)
    d = x.mean(0) - y.mean(0)
    ref = d @ d + np.trace(cov1 + cov2 - 2 * root.real)
    assert np.isfinite(fd) and fd == pytest.approx(ref, rel=1e-4)


def test_fd_needs_two_points():
    with pytest.raises(DataError):
        frechet_distance(np.zeros((1, 3)), np.zeros((5, 3)))


def test_precision_recall():
    rng = np.random.default_rng(0)
    real = rng.normal(size=(500, 4))
    assert precision_recall(real, real.copy()) == (1.0, 1.0)
    assert precision_recall(real, real + 100.0) == (0.0, 0.0)
    # Fakes covering only half the real mass: high precision, recall near one half.
    half = real[real[:, 0] > 0]
    precision, recall = precision_recall(real, half + 0.01 * rng.normal(size=half.shape))
    assert precision > 0.95 and 0.35 < recall < 0.7
    with pytest.raises(DataError):
        precision_recall(real[:3], real)


def test_classifier_beats_90_percent_on_held_out_digits(classifier, digits_split):
    _, held_out = digits_split
    assert class_accuracy(classifier, held_out.images, held_out.labels) > 0.9
    assert features(classifier, held_out.images).shape == (len(held_out), 128)


def test_feature_metrics_floor_is_small_and_noise_raises_it(classifier, digits_split):
    train, held_out = digits_split
    floor = feature_metrics(classifier, train.images, held_out.images)
    noisy = feature_metrics(classifier, train.images, torch.rand_like(held_out.images) * 2 - 1)
    assert set(floor) == {"fd", "precision", "recall"}
    assert floor["fd"] < noisy["fd"] and floor["precision"] > noisy["precision"]


def test_save_grid_writes_png(tmp_path):
    grey = torch.linspace(-1, 1, 5 * 8 * 8).reshape(5, 1, 8, 8)
    path = save_grid(grey, tmp_path / "out" / "grid.png", nrow=3, padding=1, upscale=2)
    with Image.open(path) as img:
        assert img.format == "PNG" and img.mode == "L"
        assert img.size == (1 + 3 * 17, 1 + 2 * 17)  # (width, height)
    rgb = make_grid(torch.zeros(4, 3, 6, 6), padding=0)
    assert rgb.shape == (12, 12, 3) and rgb.dtype == np.uint8 and (rgb == 128).all()
    with pytest.raises(ShapeError):
        make_grid(torch.zeros(2, 4, 7, 7))
