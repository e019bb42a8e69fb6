import numpy as np
import pytest
import torch
from PIL import Image

from diffkit.domains.images.data import (
    ImageSet,
    dequantize,
    from_array,
    load_array,
    load_folder,
    load_idx,
    load_images,
    mnist_split,
    random_hflip,
    read_idx,
    scale_uint8,
)
from diffkit.errors import DataError, MissingFileError, ShapeError

from .files import write_idx, write_pngs


@pytest.fixture
def pixels() -> np.ndarray:
    """Six 6x5 grey uint8 images covering 0 and 255."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(6, 6, 5), dtype=np.uint8)
    x[0, 0, 0], x[0, 0, 1] = 0, 255
    return x


def expected(pixels: np.ndarray) -> torch.Tensor:
    return scale_uint8(pixels[:, None])  # (N, 1, H, W)


def test_scaling_maps_0_and_255_to_minus_one_and_one(pixels):
    x = expected(pixels)
    assert x.dtype == torch.float32 and x.min() == -1.0 and x.max() == 1.0


def test_folder_with_class_subfolders_round_trips(tmp_path, pixels):
    write_pngs(tmp_path / "cats", pixels[:4])
    write_pngs(tmp_path / "dogs", pixels[4:])
    data = load_folder(tmp_path)
    assert torch.equal(data.images, expected(pixels))
    assert data.labels.tolist() == [0, 0, 0, 0, 1, 1]
    assert data.class_names == ("cats", "dogs") and data.num_classes == 2
    assert load_images(tmp_path, class_conditional=True).num_classes == 2


def test_flat_folder_has_no_labels_and_rgb_is_kept(tmp_path, pixels):
    rgb = np.stack([pixels, 255 - pixels, pixels // 2], axis=-1)  # (N, H, W, 3)
    write_pngs(tmp_path, rgb)
    data = load_folder(tmp_path)
    assert data.labels is None
    assert torch.equal(data.images, scale_uint8(rgb.transpose(0, 3, 1, 2)))


def test_jpeg_is_read(tmp_path, pixels):
    Image.fromarray(pixels[0]).save(tmp_path / "a.jpg", quality=95)
    assert load_images(tmp_path).images.shape == (1, 1, 6, 5)


@pytest.mark.parametrize("compress", [False, True])
def test_idx_round_trips_gzipped_or_not(tmp_path, pixels, compress):
    suffix = ".gz" if compress else ""
    images = tmp_path / f"toy-images-idx3-ubyte{suffix}"
    labels = tmp_path / f"toy-labels-idx1-ubyte{suffix}"
    write_idx(images, pixels, compress)
    write_idx(labels, np.arange(6) % 3, compress)
    assert np.array_equal(read_idx(images), pixels)
    for data in (load_idx(images, labels), load_images(images), load_images(tmp_path)):
        assert torch.equal(data.images, expected(pixels))
        assert data.labels.tolist() == [0, 1, 2, 0, 1, 2]
        assert data.levels == 256


def test_npz_and_npy_uint8_and_float_give_identical_tensors(tmp_path, pixels):
    np.save(tmp_path / "u8.npy", pixels)
    np.save(tmp_path / "f32.npy", pixels.astype(np.float32) / 255)
    np.savez(tmp_path / "u8.npz", images=pixels, labels=np.arange(6))
    np.savez(tmp_path / "f64.npz", x=pixels.astype(np.float64) / 255, y=np.arange(6))
    want = expected(pixels)
    assert torch.equal(load_images(tmp_path / "u8.npy").images, want)
    assert torch.equal(load_array(tmp_path / "u8.npz").images, want)
    assert torch.allclose(load_images(tmp_path / "f32.npy").images, want, atol=1e-6)
    f64 = load_images(tmp_path / "f64.npz")
    assert torch.allclose(f64.images, want, atol=1e-6) and f64.levels is None
    assert f64.labels.tolist() == list(range(6))


def test_channel_last_arrays_and_minus_one_to_one_floats():
    x = np.random.default_rng(1).random((3, 4, 4, 3)).astype(np.float32) * 2 - 1
    data = from_array(x)
    assert data.images.shape == (3, 3, 4, 4)
    assert torch.equal(data.images, torch.from_numpy(x.transpose(0, 3, 1, 2)))


def test_digits_default(digits):
    data = load_images()
    assert data.images.shape == (1797, 1, 8, 8) and data.num_classes == 10
    assert data.images.min() == -1.0 and data.images.max() == 1.0 and data.levels == 17
    assert torch.equal(data.images, digits.images)
    # 0..16 map to k / 8 - 1: every value is on that grid
    k = (data.images + 1) * 8
    assert torch.equal(k, k.round())


def test_dequantize_stays_in_its_bin_and_inside_minus_one_one(digits):
    g = torch.Generator().manual_seed(0)
    for levels, x in ((17, digits.images), (256, expected(np.arange(256, dtype=np.uint8)[None]))):
        y = dequantize(x, levels, generator=g)
        assert y.min() >= -1.0 and y.max() < 1.0
        k = torch.round((x + 1) * (levels - 1) / 2)
        assert torch.equal(torch.floor((y + 1) * levels / 2), k)


def test_random_hflip():
    x = torch.arange(2 * 3 * 4.0).reshape(2, 1, 3, 4)
    g = torch.Generator().manual_seed(0)
    assert torch.equal(random_hflip(x, 1.0, g), x.flip(-1))
    assert torch.equal(random_hflip(x, 0.0, g), x)
    big = torch.arange(2.0)[None, None, None].expand(4000, 1, 1, 2)
    flipped = (random_hflip(big, 0.5, g)[:, 0, 0, 0] == 1).float().mean()
    assert abs(flipped.item() - 0.5) < 0.05


def test_imageset_checks_label_length():
    with pytest.raises(ShapeError):
        ImageSet(torch.zeros(3, 1, 2, 2), torch.zeros(2, dtype=torch.long))


def test_missing_path(tmp_path):
    with pytest.raises(MissingFileError, match="does not exist"):
        load_images(tmp_path / "nope")


def test_corrupt_image(tmp_path, pixels):
    write_pngs(tmp_path, pixels[:2])
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    with pytest.raises(DataError, match=r"broken\.png"):
        load_images(tmp_path)


def test_mixed_sizes(tmp_path, pixels):
    write_pngs(tmp_path, [pixels[0], pixels[1, :4]])
    with pytest.raises(DataError, match="mixed sizes"):
        load_images(tmp_path)


def test_empty_folder(tmp_path):
    (tmp_path / "empty_class").mkdir()
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(DataError, match="no PNG/JPG/JPEG images"):
        load_images(tmp_path)


def test_single_class_folder_with_class_conditioning(tmp_path, pixels):
    write_pngs(tmp_path / "only", pixels)
    assert load_images(tmp_path).num_classes == 1
    with pytest.raises(DataError, match="a single class"):
        load_images(tmp_path, class_conditional=True)
    write_pngs(tmp_path / "flat", pixels)
    with pytest.raises(DataError, match="no labels"):
        load_images(tmp_path / "flat", class_conditional=True)


def test_unknown_file_type(tmp_path):
    (tmp_path / "data.csv").write_text("1,2,3")
    with pytest.raises(DataError, match=r"unknown file type '\.csv'"):
        load_images(tmp_path / "data.csv")


def test_truncated_and_foreign_idx(tmp_path, pixels):
    write_idx(tmp_path / "a-idx3-ubyte", pixels, compress=False)
    truncated = tmp_path / "b-idx3-ubyte"
    truncated.write_bytes((tmp_path / "a-idx3-ubyte").read_bytes()[:-7])
    with pytest.raises(DataError, match="truncated"):
        read_idx(truncated)
    foreign = tmp_path / "c-idx3-ubyte"
    foreign.write_bytes(b"PK\x03\x04 zip file")
    with pytest.raises(DataError, match="magic"):
        read_idx(foreign)


def test_bad_arrays(tmp_path):
    np.save(tmp_path / "wide.npy", np.zeros((2, 3, 4, 5), np.uint8))
    with pytest.raises(ShapeError, match=r"\(N, H, W\)"):
        load_images(tmp_path / "wide.npy")
    np.save(tmp_path / "big.npy", np.full((2, 3, 3), 7.5, np.float32))
    with pytest.raises(DataError, match="outside"):
        load_images(tmp_path / "big.npy")
    (tmp_path / "junk.npy").write_bytes(b"not numpy")
    with pytest.raises(DataError, match="cannot read"):
        load_images(tmp_path / "junk.npy")


@pytest.fixture(params=["synthetic", "real"])
def mnist_folder(request, tmp_path):
    """A folder holding the MNIST test split: random digits in IDX files, or the real ones."""
    if request.param == "real":
        return request.getfixturevalue("mnist_dir")
    rng = np.random.default_rng(0)
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", rng.integers(0, 256, (10000, 28, 28)), True)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", rng.integers(0, 10, 10000), False)
    return tmp_path


def test_mnist_split_is_the_first_8000_and_last_2000_in_file_order(mnist_folder):
    images = next(mnist_folder.glob("t10k-images-idx3-ubyte*"))
    pixels, labels = read_idx(images), read_idx(next(mnist_folder.glob("t10k-labels-*")))
    for source in (mnist_folder, images):  # the folder or the images file itself
        train, held_out = mnist_split(source)
        assert torch.equal(train.images, expected(pixels[:8000]))
        assert torch.equal(held_out.images, expected(pixels[8000:]))
        assert train.labels.tolist() == labels[:8000].tolist()
        assert held_out.labels.tolist() == labels[8000:].tolist()
        assert train.num_classes == 10 and train.levels == 256


def test_mnist_split_refuses_other_files(tmp_path, pixels):
    with pytest.raises(MissingFileError, match="no t10k-images-idx3-ubyte"):
        mnist_split(tmp_path)
    write_idx(tmp_path / "t10k-images-idx3-ubyte", pixels, False)
    with pytest.raises(DataError, match="holds 6 images and no labels"):
        mnist_split(tmp_path)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.arange(6) % 3, False)
    with pytest.raises(DataError, match="holds 6 images; mnist_split expects"):
        mnist_split(tmp_path)
