"""Training examples: the SQLite store, import/export formats, validation, cleaning, splits."""
