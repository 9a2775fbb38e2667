"""Every size and range limit the toolkit checks before it reads or allocates, in one place.

The README's "Limits" section lists these; a file or setting beyond one is refused in one line that names the
limit, before any memory is spent on it.
"""

MAX_YAML_BYTES = 1 << 20  # a config or --space file: a few hundred bytes in practice
MIN_SAMPLE_RATE = 1_000  # Hz, a WAV clip's header rate
MAX_SAMPLE_RATE = 384_000  # Hz, the highest rate of studio recorders
MAX_SEED = 2**32 - 1  # numpy's and TensorFlow's seeds are 32-bit
MAX_ARRAY_BYTES = 4 << 30  # an .npy input for predict, as its header declares it
MAX_IMAGE_PIXELS = 25_000_000  # one image, as its header declares it (5000 x 5000): recipes train on far smaller
MAX_UNITS = 1 << 16  # units of one dense layer: 65,536 (a 64-input layer of that width is 4M weights)
MAX_FILTERS = 1 << 12  # filters of one convolution
MAX_BLOCKS = 64  # repeated blocks of a reference recipe (its own limit may be lower: mobilenet_v1 has 13)
MAX_IMAGE_SIDE = 4096  # image_size height or width that folder images are resized to


def open_image(path: object) -> object:
    """``PIL.Image.open`` (header only) without Pillow's own decompression-bomb warning: the toolkit's lower
    :data:`MAX_IMAGE_PIXELS` is checked by :func:`image_too_large` before anything is decoded."""
    import warnings

    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        return Image.open(path)


def image_too_large(path: object, width: int, height: int) -> str | None:
    """The one-line refusal of an image whose header declares more than :data:`MAX_IMAGE_PIXELS`, else None."""
    if width * height <= MAX_IMAGE_PIXELS:
        return None
    return (
        f"image {path} declares {width} x {height} pixels (limit {MAX_IMAGE_PIXELS:,}); "
        "resize it first, e.g. to the model's input size"
    )
