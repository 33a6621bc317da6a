"""Where the project's own files are, and what its configs need before Hydra composes them.

The configs and the embedded sample are found through the ``pipeline`` package (``pipeline/conf`` and
``pipeline/sample`` link to ``conf/`` and ``data/sample`` in a checkout, and are copies in an installed
package), the weights through ``codec``, so ``pip install .`` works from any directory. ``${package:REL}``
in configs resolves inside the ``pipeline`` package, ``${repo:REL}`` beside it (``codec/weights/...``; in a
checkout also ``../shared/...``), whatever the working directory; the
``codec_model`` node (``conf/codec/rnn.yaml`` takes it as ``codec.model``) is :class:`codec.model.ModelConfig`
itself, so the architecture's defaults have one source.
"""

from __future__ import annotations

from pathlib import Path

from hydra.core.config_store import ConfigStore
from omegaconf import OmegaConf

from codec.model import ModelConfig

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_DIR = PACKAGE_DIR.parent  # the checkout, or site-packages when installed
CONF_DIR = PACKAGE_DIR / "conf"
OmegaConf.register_new_resolver("repo", lambda rel="": str(REPO_DIR / rel), replace=True)
OmegaConf.register_new_resolver("package", lambda rel="": str(PACKAGE_DIR / rel), replace=True)

_model = OmegaConf.structured(ModelConfig)
OmegaConf.set_readonly(_model, False)  # ModelConfig is frozen; overrides such as codec.model.width=0.5 must apply
ConfigStore.instance().store(name="codec_model", node=_model)
