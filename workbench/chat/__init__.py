"""Chat with a GGUF model through llama-cpp-python: load, stream, stop."""
