"""Spoken keywords nobody here recorded: one-second WAV clips from espeak-ng voices, with voices held out.

Usage (Debian's ``espeak-ng`` and ``sox`` on the PATH)::

    python benchmarks/speech_clips.py OUT_FOLDER [--per-class 90] [--held-out-per-class 24]

writes ``OUT_FOLDER/train/<class>/*.wav`` and ``OUT_FOLDER/held_out/<class>/*.wav``: the twelve classes of the
MLPerf Tiny keyword-spotting task (ten words, ``_silence_`` and ``_unknown_``, other words), each clip one word
spoken by an espeak-ng voice (an English accent with a voice variant, at a random speed and pitch), converted by
sox to 16 kHz 16-bit mono, placed at a random offset in one second with background noise at a random SNR. The
held-out clips are spoken by voice variants that no training clip uses (every accent of them), the way a keyword
spotter meets speakers it never heard. Everything is drawn from ``--seed``: the same command writes the same files.

``benchmarks/speech.py`` trains and evaluates on them; ``tests/test_speech_voices.py`` uses a smaller set.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import wave
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

WORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
SILENCE, UNKNOWN = "_silence_", "_unknown_"
CLASSES = (*WORDS, SILENCE, UNKNOWN)
UNKNOWN_WORDS = ("bed", "bird", "cat", "dog", "happy", "house", "marvin", "sheila", "tree", "wow", "five", "learn")
ACCENTS = ("en-gb", "en-us", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-rp", "en-gb-x-gbcwmd", "en-029", "en-us-nyc")
TRAINING_VARIANTS = (
    *("m1", "m2", "m3", "m4", "m5", "m6", "f1", "f2", "f3", "f4"),
    *("klatt", "klatt2", "Andy", "max", "linda"),
)
HELD_OUT_VARIANTS = ("m7", "f5", "klatt3", "Annie")  # voices no training clip uses
RATE = 16_000


def tools_missing() -> list[str]:
    """The programs this generator needs that are not on the PATH."""
    return [tool for tool in ("espeak-ng", "sox") if shutil.which(tool) is None]


@dataclass(frozen=True)
class Clip:
    """One clip to write: its class, the word spoken (None for silence), the voice, speed, pitch, offset and
    noise, and where."""

    label: str
    word: str | None
    voice: str
    speed: int
    pitch: int
    offset: float
    snr_db: float
    noise_level: float
    seed: int
    path: Path


def plan(folder: Path, variants: Sequence[str], per_class: int, seed: int) -> list[Clip]:
    """The clips of one part: ``per_class`` clips of each class, voices drawn from every accent with ``variants``."""
    rng = np.random.default_rng(seed)
    voices = [f"{accent}+{variant}" for accent in ACCENTS for variant in variants]
    clips = []
    for label in CLASSES:
        for index in range(per_class):
            word = None if label == SILENCE else (rng.choice(UNKNOWN_WORDS) if label == UNKNOWN else label)
            clips.append(
                Clip(
                    label,
                    None if word is None else str(word),
                    str(rng.choice(voices)),
                    int(rng.integers(120, 220)),
                    int(rng.integers(25, 75)),
                    float(rng.uniform(0.0, 1.0)),
                    float(rng.uniform(10.0, 30.0)),
                    float(10 ** rng.uniform(-3.5, -2.0)),
                    int(rng.integers(2**31)),
                    folder / label / f"{label}-{index:04d}.wav",
                )
            )
    return clips


def speak(word: str, voice: str, speed: int, pitch: int) -> np.ndarray:
    """``word`` spoken by espeak-ng, converted by sox to 16 kHz mono float samples in [-1, 1]."""
    speech = subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "--stdout", word],
        capture_output=True,
        check=True,
    ).stdout
    raw = subprocess.run(
        ["sox", "-t", "wav", "-", "-t", "raw", "-r", str(RATE), "-e", "signed", "-b", "16", "-c", "1", "-"],
        input=speech,
        capture_output=True,
        check=True,
    ).stdout
    return np.frombuffer(raw, "<i2").astype(np.float64) / 32768.0


def render(clip: Clip) -> None:
    """Write ``clip``: the word (cut to its voiced part, at most one second) at its offset in one second of
    background noise, the word's level set by the SNR, as 16-bit PCM."""
    rng = np.random.default_rng(clip.seed)
    noise = rng.normal(0.0, clip.noise_level, RATE)
    noise = np.convolve(noise, np.ones(4) / 2.0, mode="same")  # a little colour: less hiss than white noise
    samples = noise
    if clip.word is not None:
        speech = speak(clip.word, clip.voice, clip.speed, clip.pitch)
        loud = np.flatnonzero(np.abs(speech) > 0.02 * np.max(np.abs(speech)))
        speech = speech[loud[0] : loud[-1] + 1][:RATE] if loud.size else speech[:RATE]
        signal_rms = np.sqrt(np.mean(speech**2)) + 1e-12
        noise_rms = np.sqrt(np.mean(noise**2))
        speech = speech * (noise_rms * 10 ** (clip.snr_db / 20) / signal_rms)
        start = int(clip.offset * (RATE - len(speech)))
        samples = noise.copy()
        samples[start : start + len(speech)] += speech
    peak = np.max(np.abs(samples))
    if peak > 0.9:
        samples = samples * (0.9 / peak)
    clip.path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(clip.path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(np.round(samples * 32767).astype("<i2").tobytes())


def write_clips(folder: Path, per_class: int = 90, held_out_per_class: int = 24, seed: int = 0) -> dict[str, Path]:
    """Write the training and held-out folders under ``folder``; returns ``{"train": ..., "held_out": ...}``."""
    parts = {"train": folder / "train", "held_out": folder / "held_out"}
    clips = plan(parts["train"], TRAINING_VARIANTS, per_class, seed) + plan(
        parts["held_out"], HELD_OUT_VARIANTS, held_out_per_class, seed + 1
    )
    with ThreadPoolExecutor(max_workers=4) as pool:  # each clip is two short processes
        list(pool.map(render, clips))
    return parts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--per-class", type=int, default=90)
    parser.add_argument("--held-out-per-class", type=int, default=24)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    missing = tools_missing()
    if missing:
        raise SystemExit(f"error: {' and '.join(missing)} not found; install Debian's espeak-ng and sox")
    parts = write_clips(args.out, args.per_class, args.held_out_per_class, args.seed)
    for name, path in parts.items():
        print(f"{name}: {sum(1 for _ in path.rglob('*.wav'))} clips in {path}")


if __name__ == "__main__":
    main()
