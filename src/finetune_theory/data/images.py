"""Image inputs shipped with scikit-learn: two photographs and the 8 x 8 digits.

Both give real input distributions with a decaying, roughly power-law spectrum; nothing is
downloaded (the files live inside the scikit-learn wheel; the photographs are decoded with
Pillow, which matplotlib already requires).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from .._validation import check_positive_int

__all__ = ["LUMA", "sample_images", "image_patches", "patch_grid", "digit_images"]

#: ITU-R BT.601 luma weights used to turn RGB into grayscale
LUMA = np.array([0.299, 0.587, 0.114])


def sample_images() -> np.ndarray:
    """scikit-learn's two sample photographs (``china.jpg``, ``flower.jpg``) in grayscale.

    Returns
    -------
    ndarray, shape (2, 427, 640), float64
        Luma ``0.299 R + 0.587 G + 0.114 B`` scaled to ``[0, 1]``; the images in file-name
        order (china first).

    Examples
    --------
    >>> images = sample_images()
    >>> images.shape, bool(0.0 <= images.min() and images.max() <= 1.0)
    ((2, 427, 640), True)
    """
    from sklearn.datasets import load_sample_images

    bunch = load_sample_images()
    order = np.argsort([str(f) for f in bunch.filenames])
    rgb = np.stack([np.asarray(bunch.images[i], dtype=np.float64) for i in order])
    return rgb @ LUMA / 255.0


def patch_grid(shape: tuple[int, int], size: int, stride: int) -> tuple[int, int]:
    """Number of patch positions ``(rows, cols)`` in an image of ``shape``.

    ``rows = (height - size) // stride + 1`` and likewise for the columns.
    """
    size = check_positive_int(size, "size")
    stride = check_positive_int(stride, "stride")
    h, w = shape
    if size > min(h, w):
        raise ValueError(f"size = {size} exceeds the image shape {shape}")
    return (h - size) // stride + 1, (w - size) // stride + 1


def image_patches(
    size: int = 12, stride: int = 6, images: ArrayLike | None = None
) -> np.ndarray:
    """Square grayscale patches cut on a regular grid, flattened row by row.

    Parameters
    ----------
    size : int
        Side of a patch in pixels; a patch is a vector of dimension ``d = size**2``.
    stride : int
        Step between neighbouring patch corners (``stride < size`` overlaps them).
    images : array, shape (k, H, W), optional
        Grayscale images; default :func:`sample_images`.

    Returns
    -------
    ndarray, shape (N, size * size), float64
        ``N = k * rows * cols`` with ``(rows, cols) = patch_grid((H, W), size, stride)``: with
        the defaults and the two sample photographs ``N = 2 * 70 * 105 = 14700``, ``d = 144``.
        Patches of the first image come first, each image scanned row-major over the grid.
        Values in ``[0, 1]``; nothing is centred.

    Examples
    --------
    >>> image = np.arange(16.0).reshape(1, 4, 4)
    >>> image_patches(size=2, stride=2, images=image)
    array([[ 0.,  1.,  4.,  5.],
           [ 2.,  3.,  6.,  7.],
           [ 8.,  9., 12., 13.],
           [10., 11., 14., 15.]])
    """
    imgs = sample_images() if images is None else np.asarray(images, dtype=np.float64)
    if imgs.ndim != 3:
        raise ValueError(f"images must have shape (k, H, W), got {imgs.shape}")
    rows, cols = patch_grid(imgs.shape[1:], size, stride)
    windows = np.lib.stride_tricks.sliding_window_view(imgs, (size, size), axis=(1, 2))
    grid = windows[:, : rows * stride : stride, : cols * stride : stride]
    return np.ascontiguousarray(grid.reshape(-1, size * size))


def digit_images() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled handwritten digits.

    Returns
    -------
    X : ndarray, shape (1797, 64), float64
        8 x 8 images flattened row by row, intensities ``0..16`` divided by 16 (so in ``[0, 1]``).
        Three pixels (columns 0, 32 and 39) are zero in every image.
    labels : ndarray, shape (1797,), int64
        The digit shown, ``0..9``.

    Examples
    --------
    >>> X, labels = digit_images()
    >>> X.shape, labels[:5].tolist()
    ((1797, 64), [0, 1, 2, 3, 4])
    """
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return np.asarray(bunch.data, dtype=np.float64) / 16.0, np.asarray(bunch.target, np.int64)
