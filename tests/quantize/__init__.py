"""Tests of INT8 and the release of a rung (quantize/)."""
