"""CsvExampleGen with a streaming executor: flat memory on large CSVs (executor.py)."""
