"""Chat with a GGUF model through llama-cpp-python: load, stream, stop.

* `engine`: `ChatModel.load(path, ChatSettings)`, `ChatModel.stream(messages, settings, cancel)`
  yielding `PromptReady`, `TokenStreamed`..., `AnswerDone`; every failure is a `ChatError`.
* `conversation`: `Conversation` (turns, regenerate, clear) and `send_to_data` (tag from-chat).
* `compare`: `compare_stream(models, messages, ...)` for side-by-side answers.
* `gguf_file`: `read_gguf_info(path)`, a pure-Python header check (no native code).
* `template`: sandboxed rendering of a GGUF's (untrusted) Jinja2 chat template.
* `runtime` / `probe`: llama.cpp loaded quietly and AMX-safely; a test run in a child process.

Importing this package (or `engine`) does not import llama_cpp; loading a model does.
"""
