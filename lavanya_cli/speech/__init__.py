"""A voice speaking: how it is found and loaded (``options``), its engines, its ONNX exports and the WAVs it writes."""
