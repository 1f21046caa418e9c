"""Image and mask decoding with errors that name the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import MalformedFileError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


def read_image(path: str | Path, mode: str = "RGB") -> np.ndarray:
    """Decode an image file to H x W x C uint8 (RGB by default; grayscale files are converted)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            if im.mode != mode:
                im = im.convert(mode)
            array = np.asarray(im)
    except FileNotFoundError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise MalformedFileError(path, f"cannot decode image ({exc})") from exc
    return array if array.ndim == 3 else array[:, :, None]


def read_mask(path: str | Path) -> np.ndarray:
    """Decode a mask file to an H x W bool array: any non-zero value is anomalous.

    Works for 0/255 masks (MVTec AD), class-id masks (VisA, values 1..9) and 3-channel masks
    written by OpenCV (anomalib's converted VisA): the first channel is used.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            if im.mode in ("RGBA", "LA"):
                im = im.convert("L" if im.mode == "LA" else "RGB")
            array = np.asarray(im)
    except FileNotFoundError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise MalformedFileError(path, f"cannot decode mask ({exc})") from exc
    if array.ndim == 3:
        array = array[:, :, 0]
    return array != 0


def is_image_file(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES
