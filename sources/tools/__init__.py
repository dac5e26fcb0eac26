"""Command-line tools for users of the pipelines (`python -m sources.tools.<name>`)."""
