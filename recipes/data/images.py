"""Folders of images (one subfolder per class, or a ``labels.csv``) and of WAV clips (:mod:`recipes.data.audio`),
decoded once into the feature cache (:mod:`recipes.feature_cache`)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from edge.device.errors import UserError, first_line
from edge.device.limits import image_too_large, open_image
from edge.device.suffixes import IMAGE_SUFFIXES, WAV_SUFFIX
from recipes.data.tables import label_column, label_columns, read_csv_file
from recipes.dataset import Dataset, labelled
from recipes.feature_cache import CacheSettings, folder_features
from recipes.progress import Progress

LABELS_FILE = "labels.csv"  # in an image folder: one row per image, its path (FILE_COLUMN) and its label(s)
FILE_COLUMN = "file"  # continuous targets: disease progression; three body measurements
GRAYSCALE_MODES = ("L", "1", "I", "F")
# Threads decoding files for the feature cache (Pillow and the WAV reader's numpy release the GIL while decoding).
DECODING_THREADS = min(8, os.cpu_count() or 2)


def check_image_size(image_size: list[int] | None) -> tuple[int, int] | None:
    """Validate ``[height, width]``."""
    if image_size is None:
        return None
    if len(image_size) != 2 or not all(int(side) >= 1 for side in image_size):
        raise UserError(f"image_size is height,width, got {image_size}; e.g. --set image_size=32,32")
    return int(image_size[0]), int(image_size[1])


def load_folder(
    folder: Path,
    image_size: tuple[int, int] | None,
    label: str = "label",
    cache: CacheSettings | None = None,
    progress: Callable[[str], None] | None = None,
) -> Dataset:
    """Load a folder with one subfolder per class (subfolder name = class name): WAV clips or images; or a folder
    of images with a ``labels.csv`` naming each image's label(s) (:func:`_load_labelled_images`)."""
    if (folder / LABELS_FILE).is_file():
        return _load_labelled_images(folder, image_size, label, cache, progress)
    class_folders = _class_folders(folder)
    if any(child.suffix.lower() == WAV_SUFFIX for class_folder in class_folders for child in class_folder.iterdir()):
        from recipes.data.audio import load_wav_folder

        return load_wav_folder(folder, class_folders, cache, progress)
    return _load_image_folder(folder, class_folders, image_size, cache, progress)


def _load_labelled_images(
    folder: Path,
    image_size: tuple[int, int] | None,
    label: str,
    cache: CacheSettings | None,
    progress: Callable[[str], None] | None,
) -> Dataset:
    """Images listed in ``folder/labels.csv``: a ``file`` column (paths relative to the folder) and the label
    column(s) named by ``label`` (numbers for a regression, e.g. an angle or a count; text for classes)."""
    path = folder / LABELS_FILE
    header, rows, line_numbers = read_csv_file(path)
    if FILE_COLUMN not in header:
        raise UserError(
            f"CSV file {path} has no '{FILE_COLUMN}' column; give each image's path relative to {folder} in a "
            f"'{FILE_COLUMN}' column beside its label column(s)"
        )
    file_index = label_column(header, FILE_COLUMN, path)
    names, _, labels = label_columns(header, rows, line_numbers, label, path)
    files = []
    for row, line in zip(rows, line_numbers, strict=True):
        file = (folder / row[file_index]).resolve()
        if folder.resolve() not in file.parents or not file.is_file():
            raise UserError(
                f"CSV file {path} line {line}: '{row[file_index]}' is not an image file inside {folder}; "
                "give paths relative to the folder"
            )
        files.append(file)
    pixels = folder_features(folder, files, ImageFrontEnd(image_size), cache, progress)
    return labelled(pixels, labels, names, "image", folder.resolve().name)


def _load_image_folder(
    folder: Path,
    class_folders: list[Path],
    image_size: tuple[int, int] | None,
    cache: CacheSettings | None,
    progress: Callable[[str], None] | None,
) -> Dataset:
    """Load images from each class subfolder (their pixels through the feature cache)."""
    files, labels = [], []
    for class_index, class_folder in enumerate(class_folders):
        images = _image_files(class_folder)
        files.extend(images)
        labels.extend([class_index] * len(images))
    pixels = folder_features(folder, files, ImageFrontEnd(image_size), cache, progress)
    class_names = [class_folder.name for class_folder in class_folders]
    y = np.asarray(labels, dtype=np.int32)
    return Dataset(x=pixels, y=y, class_names=class_names, kind="image", name=folder.resolve().name)


def _class_folders(folder: Path) -> list[Path]:
    """The sorted class subfolders (hidden ones skipped); at least two."""
    class_folders = sorted(
        (child for child in folder.iterdir() if child.is_dir() and not child.name.startswith(".")),
        key=lambda child: child.name,
    )
    if len(class_folders) < 2:
        loose = len(_image_files(folder, required=False))
        found = f" and {loose} images directly in it" if loose else ""
        raise UserError(
            f"data folder {folder} has {len(class_folders)} class subfolder(s){found}; put the images "
            "(or .wav clips) of each class in their own subfolder (at least two classes)"
        )
    return class_folders


def _image_files(folder: Path, required: bool = True) -> list[Path]:
    """Sorted image files in ``folder`` (by suffix; hidden files skipped)."""
    files = sorted(
        child
        for child in folder.iterdir()
        if child.is_file() and child.suffix.lower() in IMAGE_SUFFIXES and not child.name.startswith(".")
    )
    if required and not files:
        raise UserError(
            f"class folder {folder} has no images ({', '.join(IMAGE_SUFFIXES)}); add the class's images "
            "or remove the folder"
        )
    return files


class ImageFrontEnd:
    """Images decoded and resized to one size (bilinear): one channel when every image is grayscale, else three
    (RGB); stored as uint8 when the images are RGB with 8-bit samples, else as float32 raw values.

    Args:
        image_size: ``(height, width)``; None: the first image's.
    """

    name = "images"
    noun = "images"

    def __init__(self, image_size: tuple[int, int] | None) -> None:
        self.image_size = image_size
        self.size, self.channels, self.dtype = image_size, 3, np.float32

    def parameters(self) -> dict[str, Any]:
        """The requested size (the cache key)."""
        return {"image_size": list(self.image_size) if self.image_size else None}

    def layout(self, files: Sequence[Path], progress: Callable[[str], None] | None) -> tuple[tuple[int, ...], Any]:
        """Read every image's header (refusing one too large or unreadable before anything is decoded) to choose
        the size, the channels and the stored dtype."""
        meter = Progress(progress, "checking", "images", len(files))
        headers = []
        with ThreadPoolExecutor(DECODING_THREADS) as pool:
            for start in range(0, len(files), 4096):
                headers.extend(pool.map(_image_header, files[start : start + 4096]))
                meter.advance(len(files[start : start + 4096]))
        meter.finish()
        first_width, first_height = headers[0][0]
        self.size = self.image_size or (first_height, first_width)
        grayscale = all(mode in GRAYSCALE_MODES or mode.startswith("I;") for _, mode in headers)
        eight_bit = all(mode not in ("I", "F") and not mode.startswith("I;") for _, mode in headers)
        self.channels = 1 if grayscale else 3
        self.dtype = np.uint8 if eight_bit and not grayscale else np.float32
        return (*self.size, self.channels), self.dtype

    def compute(self, files: Sequence[Path]) -> np.ndarray:
        """Decode and resize ``files`` in parallel threads."""
        with ThreadPoolExecutor(DECODING_THREADS) as pool:
            return np.stack(list(pool.map(self._decode, files)))

    def _decode(self, file: Path) -> np.ndarray:
        """One image as ``(height, width, channels)``: 8-bit RGB as uint8, anything else as float32 raw values."""
        from PIL import Image

        with _readable(file), open_image(file) as image:
            image.load()
            grayscale = image.mode in GRAYSCALE_MODES or image.mode.startswith("I;")
            image = image.convert("RGB" if self.dtype == np.uint8 or not grayscale else "F")
        if (image.height, image.width) != tuple(self.size):
            image = image.resize((self.size[1], self.size[0]), Image.Resampling.BILINEAR)
        array = np.asarray(image, dtype=self.dtype)
        if array.ndim == 2:
            array = array[..., np.newaxis]
        return np.repeat(array, self.channels, axis=2) if array.shape[2] != self.channels else array


@contextmanager
def _readable(file: Path) -> Iterator[None]:
    """Turn Pillow's errors while ``file`` is opened or decoded into the one-line user error."""
    from PIL import Image

    try:
        yield
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
        raise UserError(f"image {file} cannot be read ({first_line(error)}); replace or remove the file") from None


def _image_header(file: Path) -> tuple[tuple[int, int], str]:
    """An image's (width, height) and mode from its header; one too large or unreadable is a user error."""
    with _readable(file), open_image(file) as image:  # reads the header only
        refusal = image_too_large(file, *image.size)
        size, mode = image.size, image.mode
    if refusal is not None:
        raise UserError(refusal)
    return size, mode
