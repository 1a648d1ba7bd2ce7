"""The Textual UI of workbench. It imports the `workbench` engine; never the other way round."""
