"""The `gateway` command: serve, check and convert-onnx (``main``), keys (``keys``)."""
