"""Gradient-boosted trees beside the DNNs: trained by YDF on the tf.Transform output (training.py), compiled into
core TensorFlow ops (compile.py), so the exported SavedModel runs on stock TF Serving, TFMA and `serve` with no
custom op. The kind gradient_boosted_trees trains here (components/trainer/registry.py).
"""
