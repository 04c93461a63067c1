"""tfx-tabular: a config-driven TFX pipeline from a CSV file to a served, explainable classifier."""
from setuptools import find_packages, setup

setup(
    name='tfx-tabular',
    version='0.1.0',
    description='CSV + YAML config -> TFX pipeline -> TF Serving model',
    python_requires='>=3.11,<3.12',
    packages=find_packages(include=['pipeline', 'pipeline.*', 'components', 'components.*', 'transforms',
                                    'transforms.*', 'serving', 'serving.*', 'kubeflow', 'kubeflow.*']),
    # Versions are pinned in requirements.lock; these are the direct imports.
    install_requires=['tfx==1.15.1', 'tensorflow==2.15.1', 'tensorflow-transform==1.15.0',
                      'tensorflow-model-analysis==0.46.0', 'tensorflow-serving-api==2.15.1',
                      'pydantic>=2', 'pyyaml', 'matplotlib'],
    entry_points={'console_scripts': ['tfx-tabular = pipeline.cli:main']},
)
