"""QLoRA training: run config, backends (Unsloth on CUDA, transformers + peft + trl
elsewhere), the detached runner and its events."""
