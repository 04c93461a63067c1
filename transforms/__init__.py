"""tfx-tabular: transforms."""
