"""Every size and range limit the toolkit checks before it reads or allocates, in one place.

The README's "Limits" section lists these; a file or setting beyond one is refused in one line that names the
limit, before any memory is spent on it.
"""

MAX_YAML_BYTES = 1 << 20  # a config or --space file: a few hundred bytes in practice
MIN_SAMPLE_RATE = 1_000  # Hz, a WAV clip's header rate
MAX_SAMPLE_RATE = 384_000  # Hz, the highest rate of studio recorders
MAX_SEED = 2**32 - 1  # numpy's and TensorFlow's seeds are 32-bit
MAX_ARRAY_BYTES = 4 << 30  # an .npy input for predict, as its header declares it
