"""Makes tf.io.gfile read and write s3:// in every Python process of the pipeline image.

Since TensorFlow 2.6, s3:// lives in tensorflow-io and works only after `import tensorflow_io`, which TFX 1.15 never
does (tensorflow/tfx#4537): every component and every Beam worker process would fail with "File system scheme 's3'
not implemented". The image's `tfx_tabular_filesystems.pth` imports this module when Python starts; it waits until
the process imports TensorFlow and then imports tensorflow_io, so processes that never touch TensorFlow (pip, the
KFP launcher) start as fast as before.
"""
import importlib
import importlib.abc
import importlib.machinery
import sys

PLUGIN = 'tensorflow_io'


def _import_plugin() -> None:
    try:
        importlib.import_module(PLUGIN)
    except ImportError:  # not installed here (e.g. a local venv): gs:// and local paths still work
        pass


class _AfterTensorflow(importlib.abc.MetaPathFinder):
    """Finds `tensorflow` like Python would, and imports the plugin right after TensorFlow's own module ran."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != 'tensorflow':
            return None
        sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return spec
        run_module = spec.loader.exec_module

        def exec_module(module):
            run_module(module)
            _import_plugin()
        spec.loader.exec_module = exec_module
        return spec


def install() -> None:
    if 'tensorflow' in sys.modules:
        _import_plugin()
    elif not any(isinstance(finder, _AfterTensorflow) for finder in sys.meta_path):
        sys.meta_path.insert(0, _AfterTensorflow())


install()
