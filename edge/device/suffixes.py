"""The file suffixes the toolkit reads as images and as audio clips (shared by the loaders and the device runtime,
so this module imports nothing)."""

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
WAV_SUFFIX = ".wav"
