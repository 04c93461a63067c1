"""tfx-tabular: pipeline."""
