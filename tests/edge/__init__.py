"""Tests of the torch-free runtime (edge/)."""
