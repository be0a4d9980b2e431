"""Codecs: one object owns both halves of a heatmap representation (points <-> map)."""
