"""In-process models: ``base`` (shared settings and sampling), ``runtime`` (worker thread, fair
queue), ``chat`` (the provider face), ``llama_cpp``, ``onnx``, ``embedded`` (the default
SmolLM2) and ``convert`` (GGUF → onnxruntime-genai). Runtimes are imported lazily."""
