"""SPIRE training side (torch): models, datasets with augmentation, training and evaluation.

Uses `edge` for preprocessing, codecs and metrics so training-time numbers match the device.
"""
