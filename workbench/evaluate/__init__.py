"""Head-to-head evaluation: candidate and baseline outputs, the Claude judge, the report."""
