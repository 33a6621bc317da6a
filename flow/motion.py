"""The motion object the video coder calls: estimate, compensate, encode, decode block vectors.

Built from ``conf/motion/block.yaml`` with ``hydra.utils.instantiate``.
"""

from __future__ import annotations

import numpy as np

from flow.block_matching import BLOCK_SIZES, estimate_block_motion, grid_shape
from flow.compensation import compensate
from flow.vector_coding import decode_vectors, encode_vectors


class BlockMotion:
    """Block-matching motion with backward vectors (block at x predicted from the reference at x + mv).

    block: 8, 16 or 32 px; search: range in px (+-); obmc: overlapped-block compensation;
    subpel: quarter-pel refinement (else integer vectors); decimate: row decimation of full-resolution
    matching costs (1 = all rows); lam: rate penalty per px of distance from the median-predicted vector
    (mean absolute luma difference units; 0 = pure matching).
    """

    def __init__(self, block: int = 16, search: int = 64, obmc: bool = True, subpel: bool = True,
                 decimate: int = 2, lam: float = 0.02) -> None:
        if block not in BLOCK_SIZES:
            raise ValueError(f"motion block size {block} is not supported; expected one of {BLOCK_SIZES}")
        self.block, self.search, self.obmc, self.subpel, self.decimate = block, search, obmc, subpel, decimate
        self.lam = lam

    def grid_shape(self, frame_shape: tuple[int, ...]) -> tuple[int, int]:
        """(rows, cols) of the vector field for a frame of shape (H, W, ...)."""
        return grid_shape(frame_shape, self.block)

    def estimate(self, cur: np.ndarray, ref: np.ndarray, previous: np.ndarray | None = None) -> np.ndarray:
        """uint8 (H, W, 3) current and reference frames -> (ceil(H/B), ceil(W/B), 2) float32 quarter-pel mv."""
        return estimate_block_motion(cur, ref, self.block, self.search, previous, self.subpel, self.decimate,
                                     self.lam)

    def compensate(self, ref: np.ndarray, mv: np.ndarray) -> np.ndarray:
        """uint8 (H, W, 3) reference + vectors -> uint8 (H, W, 3) prediction of the current frame."""
        return compensate(ref, mv, self.block, self.obmc)

    def encode(self, mv: np.ndarray) -> bytes:
        """Vector field -> bytes (header with magic and version; exact round trip)."""
        return encode_vectors(mv, self.block)

    def decode(self, data: bytes, frame_shape: tuple[int, ...]) -> np.ndarray:
        """bytes -> vector field for a frame of shape (H, W, ...); raises ValueError on a mismatch."""
        return decode_vectors(data, self.grid_shape(frame_shape), self.block)

    def __repr__(self) -> str:
        return (f"BlockMotion(block={self.block}, search={self.search}, obmc={self.obmc}, "
                f"subpel={self.subpel}, decimate={self.decimate}, lam={self.lam})")
