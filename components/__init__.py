"""tfx-tabular: components."""
