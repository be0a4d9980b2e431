"""Tests of models, training, evaluation (spire/)."""
