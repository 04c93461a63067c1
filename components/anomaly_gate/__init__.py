"""AnomalyGate: stops the run on ExampleValidator anomalies, one line per column with the fix."""
