"""The stock TFX Evaluator's configuration (eval_config.py) and the one reader of its TFMA outputs (results.py)."""
