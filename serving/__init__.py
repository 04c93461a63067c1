"""tfx-tabular: serving."""
