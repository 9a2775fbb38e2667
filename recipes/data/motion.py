"""``motion``: seeded synthetic IMU recordings of people doing activities (accelerometer and gyroscope).

A wrist-worn IMU sampled at :data:`SAMPLE_RATE` Hz: accelerometer ``ax, ay, az`` in g (gravity included) and
gyroscope ``gx, gy, gz`` in degrees per second. Each of :data:`PEOPLE` people records each activity
:data:`RECORDINGS_PER_ACTIVITY` times for :data:`SECONDS` seconds. People differ in cadence (±15%), amplitude
(±40%) and how the sensor is tilted on the wrist (up to 35 degrees about each axis), and every recording
carries sensor noise and a few random arm movements, so a model must learn the activity, not the person:

- ``still``: gravity, sensor noise and a slow postural sway;
- ``walk``: a 1.5-2.1 Hz step cycle (vertical bounce with its second harmonic, forward sway, arm swing on the
  gyroscope);
- ``run``: a 2.4-3.0 Hz cycle, about 2.5 times the acceleration and twice the rotation of walking (with the
  people's cadence and amplitude factors, a slow runner comes close to a brisk walker);
- ``wave``: a 1.2-2.5 Hz side-to-side rotation of the forearm, large on one gyroscope axis.

This module imports numpy only.
"""

from __future__ import annotations

import numpy as np

SAMPLE_RATE = 50.0
PEOPLE = 8
RECORDINGS_PER_ACTIVITY = 2
SECONDS = 24.0
ACTIVITIES = ("still", "walk", "run", "wave")
CHANNELS = ["ax", "ay", "az", "gx", "gy", "gz"]
WINDOW_SECONDS = 2.0  # the built-in set's windows, when --set window_seconds is not given


def _rotation(angles: np.ndarray) -> np.ndarray:
    """The rotation matrix of small tilts about x, y and z (radians)."""
    cx, cy, cz = np.cos(angles)
    sx, sy, sz = np.sin(angles)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rz @ ry @ rx


def recording(activity: str, person: dict[str, float | np.ndarray], generator: np.random.Generator) -> np.ndarray:
    """One recording's samples ``(SECONDS * SAMPLE_RATE, 6)``: accelerometer (g) then gyroscope (deg/s)."""
    t = np.arange(int(SECONDS * SAMPLE_RATE)) / SAMPLE_RATE
    phase = generator.uniform(0, 2 * np.pi)
    gain = person["amplitude"]
    acceleration = np.zeros((len(t), 3))
    rotation = np.zeros((len(t), 3))
    if activity == "still":
        acceleration[:, 0] = 0.01 * np.sin(2 * np.pi * 0.3 * t + phase)
        rotation[:, 1] = 1.0 * np.sin(2 * np.pi * 0.25 * t + phase)
    elif activity in ("walk", "run"):
        running = activity == "run"
        cadence = person["cadence"] * (generator.uniform(2.4, 3.0) if running else generator.uniform(1.5, 2.1))
        scale = gain * (2.5 if running else 1.0)
        step = 2 * np.pi * cadence * t + phase
        acceleration[:, 2] = scale * (0.35 * np.sin(step) + 0.12 * np.sin(2 * step + 0.5))
        acceleration[:, 0] = scale * 0.2 * np.sin(step / 2 + 0.3)
        acceleration[:, 1] = scale * 0.08 * np.sin(step + 1.1)
        rotation[:, 1] = gain * (1.8 if running else 1.0) * 60 * np.sin(step / 2)
        rotation[:, 0] = gain * 15 * np.sin(step + 0.7)
    else:  # wave
        frequency = person["cadence"] * generator.uniform(1.2, 2.5)
        swing = 2 * np.pi * frequency * t + phase
        rotation[:, 2] = gain * 150 * np.sin(swing)
        acceleration[:, 1] = gain * 0.6 * np.sin(swing + 0.4)
        acceleration[:, 0] = gain * 0.15 * np.sin(2 * swing)
    gravity = np.array([0.0, 0.0, 1.0])
    tilt = person["tilt"]
    for _ in range(generator.integers(1, 4)):  # a few random arm movements of 0.3-1 s
        start, length = int(generator.integers(0, len(t))), int(generator.uniform(0.3, 1.0) * SAMPLE_RATE)
        bump = np.hanning(min(length, len(t) - start))[:, None]
        acceleration[start : start + len(bump)] += bump * generator.normal(0, 0.2, 3)
        rotation[start : start + len(bump)] += bump * generator.normal(0, 30, 3)
    acceleration = (acceleration + gravity) @ tilt.T + generator.normal(0, 0.05, acceleration.shape)
    rotation = rotation @ tilt.T + generator.normal(0, 5.0, rotation.shape)
    return np.concatenate([acceleration, rotation], axis=1).astype(np.float32)


def person(generator: np.random.Generator) -> dict[str, float | np.ndarray]:
    """One person's cadence and amplitude factors and the sensor's tilt on their wrist."""
    return {
        "cadence": float(generator.uniform(0.85, 1.15)),
        "amplitude": float(generator.uniform(0.6, 1.4)),
        "tilt": _rotation(np.radians(generator.uniform(-35, 35, 3))),
    }


def motion_recordings(seed: int = 0, people: int = PEOPLE) -> list[tuple[str, str, np.ndarray]]:
    """Every recording as ``(name, activity, samples)``, named ``p<person>-<activity>-<take>``.

    Args:
        seed: the generator's seed; the same seed gives the same recordings.
        people: how many people record.
    """
    generator = np.random.default_rng(seed)
    recordings = []
    for index in range(people):
        someone = person(generator)
        for activity in ACTIVITIES:
            for take in range(RECORDINGS_PER_ACTIVITY):
                name = f"p{index}-{activity}-{take}"
                recordings.append((name, activity, recording(activity, someone, generator)))
    return recordings


def write_stream_csv(path, recordings: list[tuple[str, str, np.ndarray]], with_time: bool = True) -> None:
    """Write recordings as a CSV stream: ``time`` (seconds), ``recording``, the channels and ``activity``."""
    lines = [",".join([*(["time"] if with_time else []), "recording", *CHANNELS, "activity"])]
    for name, activity, samples in recordings:
        for step, values in enumerate(samples):
            cells = [f"{step / SAMPLE_RATE:.3f}"] if with_time else []
            lines.append(",".join([*cells, name, *(f"{value:.5g}" for value in values), activity]))
    path.write_text("\n".join(lines) + "\n")
