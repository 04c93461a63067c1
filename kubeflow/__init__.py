"""tfx-tabular: kubeflow."""
