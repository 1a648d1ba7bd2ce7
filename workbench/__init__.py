"""workbench: fine-tune small open LLMs from the terminal.

The `workbench` package is the engine: no Textual, no Rich, importable and testable on its own.
The `screens` package is the Textual UI on top of it.
"""

__version__ = "0.1.0"
