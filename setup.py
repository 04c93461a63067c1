"""tfx-tabular: a config-driven TFX pipeline from a CSV file to a served, explainable classifier.

The top-level folders (pipeline, components, transforms, serving, kubeflow) install under one namespace,
`tfx_tabular`, so they clash with no other distribution: `tfx_tabular.components.trainer.run_fn`.
"""
from setuptools import find_packages, setup

FOLDERS = ('pipeline', 'components', 'transforms', 'serving', 'kubeflow')
PACKAGES = [f'tfx_tabular.{folder}{sub}' for folder in FOLDERS
            for sub in [''] + ['.' + p for p in find_packages(where=folder)]]

setup(
    name='tfx-tabular',
    version='0.1.0',
    description='CSV + YAML config -> TFX pipeline -> TF Serving model',
    python_requires='>=3.11,<3.12',
    packages=PACKAGES,
    package_dir={f'tfx_tabular.{folder}': folder for folder in FOLDERS},
    # Versions are pinned in requirements.lock; these are the direct imports.
    install_requires=['tfx==1.15.1', 'tensorflow==2.15.1', 'tensorflow-transform==1.15.0',
                      'tensorflow-model-analysis==0.46.0', 'tensorflow-serving-api==2.15.1',
                      'pydantic>=2', 'pyyaml', 'matplotlib'],
    entry_points={'console_scripts': ['tfx-tabular = tfx_tabular.pipeline.cli:main']},
)
