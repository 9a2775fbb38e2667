"""Every size and range limit the toolkit checks before it reads or allocates, in one place.

The README's "Limits" section lists these; a file or setting beyond one is refused in one line that names the
limit, before any memory is spent on it.
"""

MAX_YAML_BYTES = 1 << 20  # a config or --space file: a few hundred bytes in practice
MIN_SAMPLE_RATE = 1_000  # Hz, a WAV clip's header rate
MAX_SAMPLE_RATE = 384_000  # Hz, the highest rate of studio recorders
MAX_SEED = 2**32 - 1  # numpy's and TensorFlow's seeds are 32-bit
MAX_ARRAY_BYTES = 4 << 30  # one array of an .npy or .npz (to train on or to predict), as its header declares it
MAX_MODEL_BYTES = 1 << 30  # a .keras model's files, as its zip declares them uncompressed: recipes write tens of MB
MAX_ZIP_RATIO = 100  # a .keras entry inflating more than this (Keras stores its entries uncompressed)
MAX_IMAGE_PIXELS = 25_000_000  # one image, as its header declares it (5000 x 5000): recipes train on far smaller
MAX_UNITS = 1 << 16  # units of one dense layer: 65,536 (a 64-input layer of that width is 4M weights)
MAX_FILTERS = 1 << 12  # filters of one convolution
MAX_BLOCKS = 64  # repeated blocks of a reference recipe (its own limit may be lower: mobilenet_v1 has 13)
MAX_IMAGE_SIDE = 4096  # image_size height or width that folder images are resized to
_RATIO_FLOOR = 1 << 20  # entries that inflate to less than this are never refused for their ratio


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


def array_too_large(path: object, shape: tuple[int, ...], itemsize: int, fix: str) -> str | None:
    """The one-line refusal (ending in ``fix``) of an array whose ``.npy`` header declares more than
    :data:`MAX_ARRAY_BYTES`, else None. ``path`` names the array, e.g. ``"NPZ file d.npz: array 'x'"``."""
    size = int(itemsize)
    for side in shape:
        size *= int(side)
    if size <= MAX_ARRAY_BYTES:
        return None
    return (
        f"{path} declares a {size:,}-byte array (shape {tuple(shape)}); the limit is {MAX_ARRAY_BYTES:,} bytes: {fix}"
    )


def array_header_refusal(handle: object, where: str, fix: str, numbers: str) -> str | None:
    """Read the ``.npy`` header at ``handle`` (a file or a zip member) and give the one-line refusal of an array of
    Python objects (ending in ``numbers``) or of one larger than :data:`MAX_ARRAY_BYTES` (ending in ``fix``), else
    None. ``where`` names the array, e.g. ``"NPZ file d.npz: array 'x'"``. Nothing past the header is read.

    Raises:
        ValueError, EOFError, SyntaxError or tokenize.TokenError: a damaged header (numpy parses it as a Python
            literal).
    """
    import numpy as np

    major, _ = np.lib.format.read_magic(handle)
    read_header = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
    shape, _, dtype = read_header(handle)
    if dtype.hasobject:
        return f"{where} holds Python objects, which are never unpickled; {numbers}"
    return array_too_large(where, shape, dtype.itemsize, fix)


def zip_too_large(path: object, entries: list, limit: int, fix: str, ratio: int | None = None) -> str | None:
    """The one-line refusal (ending in ``fix``) of a zip file whose ``entries`` (``ZipInfo``s of its central
    directory, read before anything is inflated) declare more than ``limit`` bytes uncompressed, or, with ``ratio``,
    hold an entry that inflates more than ``ratio`` times to over 1 MiB; else None. ``path`` names the file, e.g.
    ``"model file runs/train/x/model.keras"``.

    Python's ``zipfile`` never inflates an entry past the size its central directory declares (a longer stream
    fails its CRC check), so the declared sizes bound what reading the file allocates."""
    total = sum(entry.file_size for entry in entries)
    if total > limit:
        return f"{path} declares {total:,} bytes uncompressed (limit {limit:,}); {fix}"
    for entry in entries if ratio is not None else ():
        if entry.file_size > _RATIO_FLOOR and entry.file_size > ratio * entry.compress_size:
            return (
                f"{path}: entry {entry.filename!r} inflates {entry.compress_size:,} bytes to {entry.file_size:,} "
                f"(over {ratio}x); {fix}"
            )
    return None
