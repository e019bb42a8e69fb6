"""Image readers returning one small value type, :class:`ImageSet`, plus pure transforms.

Formats: folders of PNG/JPEG images (sub-folders are classes), IDX files (the MNIST format,
gzipped or not), NPZ/NPY arrays of shape (N, H, W) or (N, H, W, C), uint8 or float, and
scikit-learn's ``load_digits`` as the built-in default. Every reader scales pixels to [-1, 1]:
an integer level ``k`` out of ``L`` levels becomes ``2 * k / (L - 1) - 1``.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from diffkit.errors import DataError, MissingFileError, ShapeError
from diffkit.reading import check_input, reading

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
ARRAY_SUFFIXES = (".npz", ".npy")
# IDX type codes (http://yann.lecun.com/exdb/mnist/): code -> big-endian numpy dtype.
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


@dataclass(frozen=True, eq=False)
class ImageSet:
    """Images scaled to [-1, 1] with optional class labels.

    Parameters
    ----------
    images : torch.Tensor
        Float32 tensor (N, C, H, W) with values in [-1, 1].
    labels : torch.Tensor or None
        Long tensor (N,) of class indices 0..num_classes-1, or None when unlabelled.
    class_names : tuple of str
        Name of each class index (empty when unlabelled).
    levels : int or None
        Number of grey levels the pixels were quantised to (256 for 8-bit images, 17 for
        ``load_digits``), used by :func:`dequantize`; None for continuous data.
    """

    images: torch.Tensor
    labels: torch.Tensor | None = None
    class_names: tuple[str, ...] = ()
    levels: int | None = 256

    def __post_init__(self) -> None:
        if self.images.ndim != 4:
            raise ShapeError(
                f"images must be (N, C, H, W), got shape {tuple(self.images.shape)}; "
                "add the channel axis."
            )
        if self.labels is not None and self.labels.shape != (self.images.shape[0],):
            raise ShapeError(
                f"{self.images.shape[0]} images but labels of shape {tuple(self.labels.shape)}; "
                "give one label per image."
            )

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def num_classes(self) -> int:
        """Number of classes (0 when unlabelled)."""
        if self.labels is None:
            return 0
        return len(self.class_names) or int(self.labels.max()) + 1

    def take(self, index: slice | torch.Tensor) -> ImageSet:
        """A new set of the images (and labels) at ``index``."""
        labels = None if self.labels is None else self.labels[index]
        return ImageSet(self.images[index], labels, self.class_names, self.levels)


def scale_uint8(array: np.ndarray, levels: int = 256) -> torch.Tensor:
    """Integer levels 0..levels-1 (N, C, H, W) to float32 in [-1, 1]."""
    return torch.from_numpy(array.astype(np.float32) / (levels - 1) * 2.0 - 1.0)


def _scale_float(array: np.ndarray, source: str) -> torch.Tensor:
    """Float pixels in [0, 1] (or already in [-1, 1] when any is negative) to [-1, 1]."""
    lo, hi = float(array.min()), float(array.max())
    if not np.isfinite(array).all() or lo < -1.0 or hi > 1.0:
        raise DataError(
            f"float pixels in {source} span [{lo:g}, {hi:g}], outside [0, 1] and [-1, 1]; "
            "rescale them or store uint8."
        )
    array = array.astype(np.float32)
    return torch.from_numpy(array if lo < 0 else array * 2.0 - 1.0)


def from_array(
    array: np.ndarray, labels: np.ndarray | None = None, source: str = "array"
) -> ImageSet:
    """Build an :class:`ImageSet` from (N, H, W) or (N, H, W, C) pixels, uint8 or float.

    uint8 pixels are scaled by ``2 * k / 255 - 1``; float pixels are taken to be in [0, 1]
    and mapped by ``2 * x - 1``, unless some are negative, when they are kept as they are
    (already in [-1, 1]).
    """
    if array.dtype != np.uint8 and not np.issubdtype(array.dtype, np.floating):
        raise DataError(f"{source} has pixel type {array.dtype}; store uint8 or float pixels.")
    if array.ndim == 3:
        array = array[:, None]  # (N, 1, H, W)
    elif array.ndim == 4 and array.shape[-1] in (1, 3, 4):
        array = array.transpose(0, 3, 1, 2)  # (N, H, W, C) -> (N, C, H, W)
    else:
        raise ShapeError(
            f"{source} has shape {array.shape}; expected (N, H, W) or (N, H, W, C) with C "
            "in 1, 3, 4."
        )
    if array.shape[0] == 0:
        raise DataError(f"{source} holds no images; give at least one.")
    if array.dtype == np.uint8:
        images, levels = scale_uint8(array), 256
    else:
        images, levels = _scale_float(array, source), None
    label_tensor = None
    if labels is not None:
        label_tensor = torch.as_tensor(np.asarray(labels).astype(np.int64)).reshape(-1)
    return ImageSet(images.contiguous(), label_tensor, (), levels)


def load_digits_set() -> ImageSet:
    """scikit-learn's ``load_digits``: 1,797 real 8x8 digits, 10 classes.

    Pixels are integers 0..16 (17 grey levels) and are scaled by ``k / 8 - 1`` to [-1, 1];
    ``levels`` is 17 so :func:`dequantize` spreads each over its own 2/17-wide bin.
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    pixels = digits.images.reshape(-1, 1, 8, 8)  # (N, 1, 8, 8), values 0..16
    images = scale_uint8(pixels.astype(np.uint8), levels=17)
    labels = torch.from_numpy(digits.target.astype(np.int64))
    return ImageSet(images, labels, tuple(str(d) for d in range(10)), levels=17)


def _open(path: Path):
    """Open a file, transparently gunzipping it when it starts with the gzip magic bytes."""
    with open(path, "rb") as f:
        magic = f.read(2)
    return gzip.open(path, "rb") if magic == b"\x1f\x8b" else open(path, "rb")


def read_idx(path: str | Path) -> np.ndarray:
    """Read one IDX file (MNIST format, gzipped or not) into a numpy array of its own shape."""
    path = _existing(path, folder=False)
    with reading(path, "--data", "an IDX file", "re-download or unzip it"), _open(path) as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise DataError(f"{path} is not an IDX file (bad magic number); check the file.")
    ndim = raw[3]
    shape = tuple(int(d) for d in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    start = 4 + 4 * ndim
    if len(raw) - start != int(np.prod(shape)) * dtype.itemsize:
        raise DataError(f"{path} is truncated: its header promises shape {shape}; re-download it.")
    return np.frombuffer(raw, dtype, offset=start).reshape(shape).astype(dtype.newbyteorder("="))


def load_idx(images_path: str | Path, labels_path: str | Path | None = None) -> ImageSet:
    """Images (and optionally labels) from IDX files such as MNIST's ``*-ubyte[.gz]``."""
    images = read_idx(images_path)
    labels = None if labels_path is None else read_idx(labels_path)
    if labels is not None and len(labels) != len(images):
        raise DataError(
            f"{images_path} has {len(images)} images but {labels_path} has {len(labels)} "
            "labels; pair matching files."
        )
    names = tuple(str(c) for c in range(int(labels.max()) + 1)) if labels is not None else ()
    data = from_array(images, labels, source=str(images_path))
    return ImageSet(data.images, data.labels, names, data.levels)


def load_array(path: str | Path) -> ImageSet:
    """Images from ``.npy`` or from ``.npz`` (keys ``images``/``x`` and ``labels``/``y``)."""
    path = _existing(path, folder=False)
    with reading(path, "--data", "a numpy array", "re-save it with numpy"):
        loaded = np.load(path, allow_pickle=False)
    if path.suffix.lower() == ".npy":
        return from_array(loaded, source=str(path))
    with loaded:
        keys = list(loaded.keys())
        image_key = next((k for k in ("images", "x", "X") if k in keys), keys[0] if keys else None)
        if image_key is None:
            raise DataError(f"{path} holds no arrays; save the images under the key 'images'.")
        label_key = next((k for k in ("labels", "y", "Y") if k in keys), None)
        labels = loaded[label_key] if label_key else None
        return from_array(loaded[image_key], labels, source=str(path))


def read_image(path: Path) -> np.ndarray:
    """One image file as uint8 (H, W) or (H, W, 3)."""
    from PIL import Image, UnidentifiedImageError

    path = check_input(path, "image")
    try:
        with Image.open(path) as img:
            img.load()
            mode = "L" if img.mode in ("1", "L", "I;16", "I", "F") else "RGB"
            return np.asarray(img.convert(mode))
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise DataError(
            f"cannot read image {path} ({type(err).__name__}); it is corrupt or not an "
            "image: remove or replace it."
        ) from err


def load_folder(path: str | Path) -> ImageSet:
    """Images from a folder: PNG/JPEG files directly in it, or in one sub-folder per class.

    Class names are the sub-folder names in sorted order. Grey images stay one channel; if any
    image has colour, all are read as RGB. All images must share one size.
    """
    root = _existing(path)
    class_dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    groups = [(d.name, _image_files(d)) for d in class_dirs] or [("", _image_files(root))]
    groups = [(name, files) for name, files in groups if files]
    if not groups:
        raise DataError(
            f"{root} holds no {'/'.join(s[1:].upper() for s in IMAGE_SUFFIXES)} images; "
            "point at a folder of images or of class sub-folders."
        )
    arrays, labels = [], []
    for index, (_, files) in enumerate(groups):
        for file in files:
            arrays.append(read_image(file))
            labels.append(index)
    sizes = {a.shape[:2] for a in arrays}
    if len(sizes) > 1:
        raise DataError(
            f"images in {root} have mixed sizes {sorted(sizes)}; resize them to one size."
        )
    if any(a.ndim == 3 for a in arrays):  # promote grey to RGB when any image has colour
        arrays = [a if a.ndim == 3 else np.repeat(a[..., None], 3, axis=-1) for a in arrays]
    data = from_array(np.stack(arrays), source=str(root))
    if groups[0][0] == "":
        return data
    names = tuple(name for name, _ in groups)
    return ImageSet(data.images, torch.tensor(labels, dtype=torch.long), names, data.levels)


def load_images(path: str | Path | None = None, *, class_conditional: bool = False) -> ImageSet:
    """Read any supported source; the front door the CLI uses.

    Parameters
    ----------
    path : str or Path, optional
        A folder of images (sub-folders = classes), a folder holding IDX files, an IDX
        file (``*-ubyte`` / ``*.idx``, optionally ``.gz``; labels are read from the sibling
        whose name has ``labels``/``idx1`` for ``images``/``idx3``), or a ``.npz``/``.npy``
        array. ``None`` gives scikit-learn's digits (:func:`load_digits_set`).
    class_conditional : bool
        Require labels with at least two classes.

    Returns
    -------
    ImageSet
    """
    if path is None:
        data = load_digits_set()
    else:
        p = _existing(path)
        if p.is_dir():
            idx = sorted(f for f in p.iterdir() if _is_idx(f) and not _is_idx_labels(f))
            data = load_idx(idx[0], _idx_labels(idx[0])) if idx else load_folder(p)
        elif p.suffix.lower() in ARRAY_SUFFIXES:
            data = load_array(p)
        elif _is_idx(p):
            data = load_idx(p, _idx_labels(p))
        else:
            raise DataError(
                f"unknown file type {p.suffix or p.name!r} for {p}; give a folder of "
                "PNG/JPEG images, an IDX file or a .npz/.npy array."
            )
    if class_conditional and (data.labels is None or data.num_classes < 2):
        found = "no labels" if data.labels is None else "a single class"
        raise DataError(
            f"class-conditional training needs at least two classes but {path} has {found}; "
            "put images in one sub-folder per class or drop --class-conditional."
        )
    return data


def mnist_split(path: str | Path) -> tuple[ImageSet, ImageSet]:
    """The MNIST test split (10k) as its first 8,000 images for training, last 2,000 held out.

    ``path`` is the folder holding ``t10k-images-idx3-ubyte[.gz]`` and
    ``t10k-labels-idx1-ubyte[.gz]``, or the images file itself.
    """
    p = _existing(path)
    if p.is_dir():
        found = sorted(p.glob("t10k-images-idx3-ubyte*"))
        if not found:
            raise MissingFileError(
                f"{p} has no t10k-images-idx3-ubyte[.gz]; point at the MNIST folder."
            )
        p = found[0]
    data = load_idx(p, _idx_labels(p))
    if len(data) != 10000 or data.labels is None:
        raise DataError(
            f"{p} holds {len(data)} images{'' if data.labels is not None else ' and no labels'}"
            "; mnist_split expects the labelled 10,000-image MNIST test split."
        )
    return data.take(slice(0, 8000)), data.take(slice(8000, 10000))


def dequantize(
    images: torch.Tensor, levels: int = 256, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Uniform dequantisation for likelihoods: spread each of ``levels`` values over its bin.

    A pixel at level ``k`` (stored as ``2k/(L-1) - 1``) becomes ``2(k + u)/L - 1`` with
    ``u ~ U[0, 1)``, so the result has a density on [-1, 1] whose bits/dim bound the discrete
    data's (Theis et al. 2016).
    """
    k = torch.round((images + 1.0) * (levels - 1) / 2.0)
    u = torch.rand(images.shape, generator=generator, device=images.device)
    return (k + u) * (2.0 / levels) - 1.0


def random_hflip(
    images: torch.Tensor, p: float = 0.5, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Mirror each image left-right with probability ``p``; returns a new tensor."""
    flip = torch.rand(images.shape[0], generator=generator, device=images.device) < p
    return torch.where(flip[:, None, None, None], images.flip(-1), images)


def _existing(path: str | Path, *, folder: bool = True) -> Path:
    return check_input(path, "--data", folder=folder)


def _image_files(folder: Path) -> list[Path]:
    return sorted(f for f in folder.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)


def _is_idx(p: Path) -> bool:
    name = p.name.lower().removesuffix(".gz")
    return p.is_file() and (name.endswith("ubyte") or name.endswith(".idx") or "idx3" in name)


def _is_idx_labels(p: Path) -> bool:
    return "idx1" in p.name or "labels" in p.name


def _idx_labels(images_path: Path) -> Path | None:
    """The labels file next to an IDX images file, if there is one."""
    name = images_path.name
    for a, b in (("images", "labels"), ("idx3", "idx1")):
        name = name.replace(a, b)
    if name == images_path.name:
        return None
    for candidate in (name, name.removesuffix(".gz"), name + ".gz"):
        if (images_path.parent / candidate).is_file():
            return images_path.parent / candidate
    return None
