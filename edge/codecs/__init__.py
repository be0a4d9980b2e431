"""Codecs: one object owns both halves of a heatmap representation (points <-> map).

`build_codec(codec.to_dict())` rebuilds any registered codec; `CODECS` lists them.
"""
from edge.codecs.base import CODECS, SCORE_RANGE, BaseCodec, build_codec, check_threshold, register_codec
from edge.codecs.gaussian import GaussianCodec
from edge.codecs.prps import PRPSCodec

__all__ = ["CODECS", "SCORE_RANGE", "BaseCodec", "GaussianCodec", "PRPSCodec", "build_codec", "check_threshold",
           "register_codec"]
