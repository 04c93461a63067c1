"""FairnessGate: blesses a model only if its metric gaps across the configured groups are within bounds."""
