"""INT8 quantization (PTQ per backend, QAT with torchao pt2e), calibrated on IR frames."""
