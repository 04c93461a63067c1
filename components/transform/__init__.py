"""TFX's Transform with tf.Transform's analyzer fingerprints computed in linear time (executor.py)."""
