"""Model zoo: a timm-style registry, one file per architecture (HRPE family, SSHD-Net).

Why here: training, export and quantisation all build networks from a name stored in a
checkpoint; this package is the single place that maps names to networks, their input
conventions (`ModelCfg`) and their weights files (checkpoints, official SPIRE releases).
"""
from .checkpoint import CheckpointError, fuse_bn, load_checkpoint, save_checkpoint
from .official import import_official, load_official
from .registry import ModelCfg, create_model, default_cfgs, get_model_cfg, list_models, register_model

# Each architecture registers itself on import; importing spire.models.registry runs this package
# first, so the registry is complete without importing the architectures back (no cycle).
from . import hrpe, hrpe_dense, sshd  # noqa: F401

__all__ = ["ModelCfg", "create_model", "list_models", "get_model_cfg", "register_model",
           "default_cfgs", "save_checkpoint", "load_checkpoint", "fuse_bn", "CheckpointError",
           "load_official", "import_official"]
