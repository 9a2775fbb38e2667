"""The device package: everything that runs an exported model on a device with Python, and nothing else.

It is the ground floor of the project: it imports only itself, numpy, LiteRT (``ai_edge_litert``), Pillow (for
image inputs) and scipy (to resample a clip, only then), never TensorFlow or the rest of the project
(``tests/test_house.py`` checks every import statement). An export's bundle copies it whole into ``lib/``.
Training imports its front ends (series windows, WAV clips), its errors and its limits from here, so the device and
training compute the same thing with the same code.

- :mod:`edge.device.model`: :class:`~edge.device.model.EdgeModel`, a ``.tflite`` file in LiteRT with its manifest;
- :mod:`edge.device.manifest`: reading and checking ``manifest.json``;
- :mod:`edge.device.inputs`: raw inputs from CSV, ``.npy``, ``.npz``, ``.ts``, images, WAV files and folders;
- :mod:`edge.device.predictions`: predictions per task, their text, a labelled folder's score and confusion;
- :mod:`edge.device.cli`: ``python predict.py MODEL --input FILE``, the bundle's command;
- front ends: :mod:`edge.device.windows` (sensor windows, spectral features), :mod:`edge.device.series_files`
  (``.ts``), :mod:`edge.device.audio` (WAV clips), :mod:`edge.device.mfcc` (MFCCs in numpy),
  :mod:`edge.device.preprocessing` (the z-score);
- shared ground: :mod:`edge.device.errors`, :mod:`edge.device.limits`, :mod:`edge.device.suffixes`,
  :mod:`edge.device.preflight` (a model that would crash LiteRT, run in a child process first),
  :mod:`edge.device.native_output` (LiteRT's C++ output captured).
"""
