"""Model registry (timm style): architectures register by name, defaults are held as data.

Why: training, export, quantisation and the benchmarks all build models from a string stored in
a checkpoint (`arch`, `arch_kwargs`), so the mapping name -> constructor + its preprocessing,
codec and geometry must live in one place. `default_cfgs[name]` is a frozen `ModelCfg` that
says how frames must be prepared for the variant (channels, normalisation, letterbox) and how
its heatmap is decoded (codec dict for `edge.codecs.build_codec`).

Usage::

    from spire.models import create_model, list_models, get_model_cfg
    model = create_model('hrpe_lite')          # model.cfg is its ModelCfg
    list_models('hrpe*')                       # ['hrpe', 'hrpe_ir', 'hrpe_lite', 'hrpe_nano']
"""
from __future__ import annotations

import copy
import fnmatch
import warnings
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Callable

import torch.nn as nn

from edge.inference.preprocess import IMAGENET_MEAN, IMAGENET_STD  # noqa: F401  (the RGB models' norm, one copy)

__all__ = ["ModelCfg", "register_model", "create_model", "list_models", "get_model_cfg",
           "is_model", "default_cfgs"]


@dataclass(frozen=True)
class ModelCfg:
    """What a variant expects at its input and how its output is decoded.

    Args:
        in_chans: channels the network takes (1 for IR-native edge variants, 3 for RGB-trained).
        input_size: default square network input S (multiple of 32).
        stride: output stride; the heatmap is S/stride x S/stride.
        codec: kwargs for `edge.codecs.build_codec` (its `input_size` is filled at build time).
        norm: kwargs for `edge.inference.preprocess.Normalization` (`mode`, `mean`, `std`, ...).
        letterbox: 'faithful' (official 3-point affine, needed by the released weights) or 'center'.
        scale_up: True letterboxes every frame to S; False keeps native resolution (pad only).
        faithful: True when the variant reproduces the published network bit for bit.
        int8: the variant's PTQ recipe per backend ({'openvino': {'ignored_scope': [...]},
            'onnxruntime': {'calibrate_method': 'Percentile'}}), found by its fidelity reports:
            what `python -m quantize.ptq` uses unless told otherwise, so the plain command gives
            the INT8 model that ships.
    """

    in_chans: int
    input_size: int
    stride: int = 4
    codec: dict = field(default_factory=dict)
    norm: dict = field(default_factory=dict)
    letterbox: str = "center"
    scale_up: bool = True
    faithful: bool = False
    int8: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.in_chans not in (1, 3):
            raise ValueError(f"ModelCfg.in_chans must be 1 or 3, got {self.in_chans}")
        if self.input_size % 32:
            raise ValueError(f"ModelCfg.input_size must be a multiple of 32, got {self.input_size}")
        if self.letterbox not in ("faithful", "center"):
            raise ValueError(f"ModelCfg.letterbox must be 'faithful' or 'center', got {self.letterbox!r}")

    def to_dict(self) -> dict:
        """A deep copy as plain data (JSON / weights_only friendly)."""
        return copy.deepcopy(asdict(self))

    @classmethod
    def from_dict(cls, d: dict) -> "ModelCfg":
        return cls(**copy.deepcopy(dict(d)))

    def replace(self, **changes: Any) -> "ModelCfg":
        return replace(self, **copy.deepcopy(changes))

    def codec_cfg(self, input_size: int | None = None) -> dict:
        """The codec dict with `input_size` and `stride` filled in (for `build_codec`)."""
        d = copy.deepcopy(self.codec)
        d.setdefault("input_size", int(input_size or self.input_size))
        if input_size is not None:
            d["input_size"] = int(input_size)
        d.setdefault("stride", self.stride)
        return d

    def preprocess_config(self, imgsz: int | None = None):
        """The `edge.inference.preprocess.PreprocessConfig` frames must go through for this variant."""
        from edge.inference.preprocess import Normalization, PreprocessConfig

        return PreprocessConfig(imgsz=int(imgsz or self.input_size), channels=self.in_chans,
                                norm=Normalization.from_dict(self.norm),
                                letterbox=self.letterbox, scale_up=self.scale_up)

    def build_codec(self, imgsz: int | None = None):
        """The `edge.codecs` codec (encode targets / decode heatmaps) for this variant."""
        from edge.codecs.base import build_codec

        return build_codec(self.codec_cfg(imgsz))

    def int8_recipe(self, backend: str) -> dict:
        """This variant's PTQ options for one backend (empty: the quantizer's defaults)."""
        return copy.deepcopy(dict(self.int8.get(backend, {})))


_model_entrypoints: dict[str, Callable[..., nn.Module]] = {}
default_cfgs: dict[str, ModelCfg] = {}


def register_model(fn: Callable[..., nn.Module] | None = None, *, cfg: ModelCfg | None = None):
    """Register a constructor under its function name, optionally with its `ModelCfg`.

    Usable as `@register_model` or `@register_model(cfg=ModelCfg(...))`; the architecture
    module can also fill `default_cfgs[name]` itself (timm does both).
    """

    def _register(f: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        name = f.__name__
        if name in _model_entrypoints and _model_entrypoints[name] is not f:
            warnings.warn(f"register_model: overwriting model {name!r}", stacklevel=3)
        _model_entrypoints[name] = f
        if cfg is not None:
            default_cfgs[name] = cfg
        return f

    return _register(fn) if fn is not None else _register


def check_arch_kwargs(name: str, arch_cls, kwargs: dict) -> None:
    """One-line TypeError when `kwargs` names a field the variant's arch dataclass does not have."""
    from dataclasses import fields

    allowed = {f.name for f in fields(arch_cls)}
    unknown = set(kwargs) - allowed
    if unknown:
        raise TypeError(f"{name}: unknown argument(s) {sorted(unknown)}; allowed: {sorted(allowed)}")


def list_models(pattern: str = "*") -> list[str]:
    """Registered names matching a shell-style wildcard, sorted."""
    return sorted(n for n in _model_entrypoints if fnmatch.fnmatch(n, pattern))


# Names a network was registered under before; their checkpoints load as the network they are now.
ALIASES = {"hrpe_dense": "spire_m", "hrpe_dense_s": "spire_n"}


def canonical_name(name: str) -> str:
    """'spire-s' -> 'spire_s' (the ladder's names are typed with a hyphen), old names -> ALIASES."""
    n = str(name).replace("-", "_")
    return ALIASES.get(n, n)


def is_model(name: str) -> bool:
    return canonical_name(name) in _model_entrypoints


def get_model_cfg(name: str) -> ModelCfg:
    """The default `ModelCfg` of a registered variant."""
    name = canonical_name(name)
    if name not in default_cfgs:
        raise KeyError(_unknown(name))
    return default_cfgs[name]


def _unknown(name: str) -> str:
    import difflib

    close = difflib.get_close_matches(name, list(_model_entrypoints), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown model {name!r}{hint}; choose one of {', '.join(sorted(_model_entrypoints))}"


def create_model(name: str, **kwargs: Any) -> nn.Module:
    """Build a registered model; kwargs that are None are dropped so the variant defaults win.

    The returned module carries `.arch` (name), `.arch_kwargs` (the kwargs actually passed; a
    checkpoint stores both so `load_checkpoint` rebuilds the same network) and `.cfg`
    (its `ModelCfg`; constructors may refine it, e.g. when `in_chans` is overridden).

    Example::

        >>> m = create_model('hrpe_nano')
        >>> m.cfg.in_chans, m.cfg.stride
        (1, 4)
    """
    name = canonical_name(name)
    if name not in _model_entrypoints:
        raise KeyError(_unknown(name))
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    model = _model_entrypoints[name](**kwargs)
    model.arch = name
    model.arch_kwargs = copy.deepcopy(kwargs)
    if getattr(model, "cfg", None) is None:
        model.cfg = default_cfgs.get(name)
    return model
