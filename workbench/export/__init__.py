"""Export fine-tuned models to GGUF for llama.cpp: merge, convert, quantize, describe.

* `job`: `plan_export` / `start_export` / `stop_export` (detached, `exports/<id>/`) and
  `export_run(request, cancel)`, an iterator of `events` (fold them with `ExportProgress`).
* `checkpoints`: which adapter (`best`, `last`, a step) and base model a run's export uses.
* `merge`, `convert`, `quantize`: the three steps; `manifest`: `manifest.json` and the list of
  exported GGUFs (`list_exported_ggufs`) for the Chat screen.
"""
