"""Procedural driving scenes with exact optical flow: ``python -m pipeline.synthetic --out DIR ...``.

A seeded street (road with lane markings, kerbs and sidewalks, street trees, building facades, parked,
leading and oncoming cars, a sky with clouds) is ray-cast from a forward-moving pinhole camera. Because
every pixel is the image of a known 3D point, the forward flow t -> t+1 and the occlusion mask are exact.
"""

from pipeline.synthetic.dataset import frame_path, ground_truth_paths, read_ground_truth, write_sequences
from pipeline.synthetic.render import ground_truth, render_image
from pipeline.synthetic.scene import Scene, make_scene

__all__ = ["Scene", "frame_path", "ground_truth", "ground_truth_paths", "make_scene", "read_ground_truth",
           "render_image", "write_sequences"]
