"""Procedural texture primitives: tileable smooth noise and integer hashing, vectorised over points.

Textures are functions of surface coordinates (never of pixels), so a surface point has the same colour
in every frame; that is what makes the analytic optical flow photometrically exact.
"""

from __future__ import annotations

import numpy as np


class NoiseTiles:
    """Periodic band-limited noise tiles, zero mean and unit standard deviation, sampled bilinearly.

    ``tiles[k]`` has its energy around ``cycles[k]`` cycles per tile of ``size`` texels, so with the
    defaults a feature of band 0, 1, 2 spans about 64, 16, 4 texels. Sampling at ``(u, v)`` in texels
    wraps around, so the texture is infinite and seamless.
    """

    def __init__(self, rng: np.random.Generator, size: int = 256, cycles: tuple[float, ...] = (4, 16, 64)) -> None:
        self.size = size
        freq = np.fft.fftfreq(size) * size
        radius = np.hypot(freq[:, None], freq[None, :])
        tiles = []
        for c in cycles:
            # Gaussian band around `c` cycles: filtering white noise in the Fourier domain keeps it periodic.
            spectrum = np.exp(-0.5 * ((radius - c) / (0.5 * c)) ** 2)
            white = rng.standard_normal((size, size))
            tile = np.real(np.fft.ifft2(np.fft.fft2(white) * spectrum))
            tiles.append((tile - tile.mean()) / tile.std())
        self.tiles = np.stack(tiles)

    def __call__(self, level: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Noise of band ``level`` at texel coordinates (u, v), any matching shapes -> same shape."""
        tile = self.tiles[level]
        n = self.size
        fu, fv = np.floor(u), np.floor(v)
        au, av = u - fu, v - fv
        i0 = fu.astype(np.int64) % n
        j0 = fv.astype(np.int64) % n
        i1, j1 = (i0 + 1) % n, (j0 + 1) % n
        top = tile[j0, i0] * (1 - au) + tile[j0, i1] * au
        bottom = tile[j1, i0] * (1 - au) + tile[j1, i1] * au
        return top * (1 - av) + bottom * av


def hash01(*keys: np.ndarray | int) -> np.ndarray:
    """Deterministic pseudo-random values in [0, 1) from integer keys (e.g. window row and column)."""
    h = np.uint64(0x9E3779B97F4A7C15)
    with np.errstate(over="ignore"):
        for key in keys:
            h = h ^ (np.asarray(key).astype(np.int64).astype(np.uint64) + np.uint64(0x632BE59BD9B4E019))
            h = h * np.uint64(0xBF58476D1CE4E5B9)
            h = h ^ (h >> np.uint64(31))
            h = h * np.uint64(0x94D049BB133111EB)
            h = h ^ (h >> np.uint64(29))
    return (h >> np.uint64(11)).astype(np.float64) / float(1 << 53)
