"""ServedModel: the version TF Serving serves now, as the baseline the Evaluator compares a candidate with."""
