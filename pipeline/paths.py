"""Where the project's own files are, and what its configs need before Hydra composes them.

``${repo:REL}`` in configs resolves to a path inside the project, whatever the working directory; the
``codec_model`` node (``conf/codec/rnn.yaml`` takes it as ``codec.model``) is :class:`codec.model.ModelConfig`
itself, so the architecture's defaults have one source.
"""

from __future__ import annotations

from pathlib import Path

from hydra.core.config_store import ConfigStore
from omegaconf import OmegaConf

from codec.model import ModelConfig

REPO_DIR = Path(__file__).resolve().parent.parent
CONF_DIR = REPO_DIR / "conf"
OmegaConf.register_new_resolver("repo", lambda rel="": str(REPO_DIR / rel), replace=True)

_model = OmegaConf.structured(ModelConfig)
OmegaConf.set_readonly(_model, False)  # ModelConfig is frozen; overrides such as codec.model.width=0.5 must apply
ConfigStore.instance().store(name="codec_model", node=_model)
