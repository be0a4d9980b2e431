"""Tests of the exporters (export/)."""
