"""Export a trained checkpoint per edge target (ONNX, OpenVINO IR, TFLite/LiteRT, TensorRT recipe)."""
