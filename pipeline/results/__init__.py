"""What a run produced, read once from MLMD and the artifacts, and its two renderers (text, HTML)."""
