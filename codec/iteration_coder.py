"""What every coder of one image's iterations shares: checked bits in, range-coded bytes out, and back."""

from __future__ import annotations

import constriction
import numpy as np

RangeEncoder = constriction.stream.queue.RangeEncoder
RangeDecoder = constriction.stream.queue.RangeDecoder


class IterationCoder:
    """Codes the iterations of one image in order (create one per image). Bits are (C, h, w) int8 arrays in
    {-1, 0, +1} (0 = not transmitted); ``active`` (h, w) bool says which positions this iteration transmits.
    A subclass walks the bits in its coding order in :meth:`_run`, encoding them or filling them in."""

    channels: int

    def encode(self, bits: np.ndarray, active: np.ndarray) -> bytes:
        """One iteration's bits (C, h, w) -> bytes."""
        if bits.shape[0] != self.channels or bits.shape[1:] != active.shape:
            raise ValueError(f"bits {bits.shape} do not match {self.channels} channels and active {active.shape}")
        if np.any(bits[:, active] == 0) or np.any(bits[:, ~active] != 0):
            raise ValueError("bits must be +-1 exactly where active and 0 elsewhere")
        encoder = RangeEncoder()
        self._run(bits.astype(np.int8), active, encoder=encoder)
        return encoder.get_compressed().astype("<u4").tobytes()

    def decode(self, data: bytes, active: np.ndarray) -> np.ndarray:
        """Bytes of one iteration -> bits (C, h, w) int8."""
        if len(data) % 4:
            raise ValueError(f"entropy-coded iteration has {len(data)} bytes, expected a multiple of 4")
        decoder = RangeDecoder(np.frombuffer(data, dtype="<u4").astype(np.uint32))
        bits = np.zeros((self.channels, *active.shape), dtype=np.int8)
        try:
            self._run(bits, active, decoder=decoder)
        except BaseException as err:  # constriction raises its own types on malformed data
            if isinstance(err, ValueError | KeyboardInterrupt):
                raise
            raise ValueError(f"entropy-coded iteration is malformed: {err}") from err
        return bits

    def _run(self, bits: np.ndarray, active: np.ndarray, encoder: RangeEncoder | None = None,
             decoder: RangeDecoder | None = None) -> None:
        raise NotImplementedError
