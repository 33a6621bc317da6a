r"""Fit the motion-vector coder's initial counts on fields the coder sent: ``python -m pipeline.video.vector_prior``.

    python -m pipeline.video.vector_prior [--out flow/vector_prior.safetensors] [--strength 64] FIELDS ...

FIELDS are ``.npy`` (rows, cols, 2) float32 vector fields (``pipeline.video.closed_loop_data --vectors``) or folders
of them. Each quarter-pel one (the unit the prior serves) is coded as the stream codes it; the bins' statistics are
summed and written as the initial counts of every context (:func:`flow.vector_coding.initial_counts`). The counts
change the vector bitstream, so a new fit needs a new vector stream version (``flow.vector_coding.VERSION``).

The shipped counts were fitted at 84af204 on 112 quarter-pel fields the coder sent (quality 30 and 42, the first 15
frames of Cityscapes seq0000-0002 and seq0004 and of the dashcam clip; seq0003 and the frames ``bench.motion_rd``
measures left out; bench/RESULTS.md, "vector stream v5")::

    python -m pipeline.video.closed_loop_data --out outputs/vector_fields --vectors --quality 30 42 \
        --max-iterations 8 --frames 15 --exclude seq0003 ../shared/data/cityscapes_sequence
    python -m pipeline.video.closed_loop_data --out outputs/vector_fields --vectors --quality 30 42 \
        --max-iterations 8 --frames 15 --size 960x540 ../shared/data/udacity_dashcam/solidWhiteRight.mp4
    rm outputs/vector_fields/cityscapes_sequence_seq000?_00{01,10}_q*.npy
    python -m pipeline.video.vector_prior outputs/vector_fields
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

from atomic import temporary_path
from flow.vector_coding import PRIOR, QPEL, checked_field, field_unit, initial_counts, observed_counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("fields", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, default=PRIOR)
    parser.add_argument("--strength", type=int, default=64, help="most counts a context starts with")
    args = parser.parse_args(argv)
    files = [f for p in args.fields for f in (sorted(p.glob("*.npy")) if p.is_dir() else [p])]
    if not files:
        raise SystemExit(f"no .npy vector fields in {', '.join(map(str, args.fields))}")
    total: dict[str, np.ndarray] = {}
    fitted = 0
    for f in files:
        try:
            mv = checked_field(np.load(f))
        except (OSError, ValueError) as err:
            raise SystemExit(f"{f}: not a vector field ({err})") from err
        if field_unit(mv) != QPEL:  # whole- and half-pel fields start from ones
            continue
        for name, counts in observed_counts(mv).items():
            total[name] = total.get(name, 0) + counts
        fitted += 1
    if not fitted:
        raise SystemExit("none of the fields is in quarter pixels, the unit the prior serves")
    with temporary_path(args.out) as tmp:
        save_file(initial_counts(total, args.strength), str(tmp))
    print(f"fitted on {fitted} quarter-pel fields of {len(files)} -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
