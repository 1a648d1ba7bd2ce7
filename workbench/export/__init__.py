"""Export fine-tuned models to other formats (GGUF for llama.cpp)."""
