"""Benchmarks: decode timing and the backend x precision table of accuracy, speed and power."""
