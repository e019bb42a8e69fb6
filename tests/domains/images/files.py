"""Image files written by the tests: IDX (MNIST's format, header and all) and PNG folders."""

import gzip

import numpy as np
from PIL import Image


def write_idx(path, array: np.ndarray, compress: bool = False) -> None:
    """An unsigned-byte IDX file: magic 0 0 8 ndim, the big-endian sizes, then the bytes."""
    header = bytes([0, 0, 0x08, array.ndim]) + np.array(array.shape, ">u4").tobytes()
    data = header + array.astype(np.uint8).tobytes()
    if compress:
        with gzip.open(path, "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)


def write_pngs(folder, arrays) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i, a in enumerate(arrays):
        Image.fromarray(a).save(folder / f"{i:03d}.png")
