"""SPIRE-Edge runtime: the numpy/opencv half that runs on the device.

Everything here imports only numpy, opencv and the standard library (backend runtimes and
matplotlib only lazily), so a Jetson, an Intel box or a Raspberry Pi needs no torch. Training
imports the same preprocessing, codec and metrics from here, so the numbers measured at
training time and on the device come from the same code.
"""
__version__ = "0.1.0"
