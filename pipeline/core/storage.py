"""File operations for push directories that are local folders or object-store URIs (gs://, s3://, ...).

Local paths use the os module (fast, no TensorFlow import, atomic renames); URIs use tf.io.gfile, as TFX and TF
Serving do. Object stores have no atomic folder rename: `copy_tree` writes saved_model.pb last there, the
same safeguard as TFX's own Pusher.
"""
import contextlib
import fcntl
import os
import shutil
from typing import Iterator, List

SAVED_MODEL_PB = 'saved_model.pb'


def is_uri(path: str) -> bool:
    return '://' in path


def _gfile():
    import tensorflow as tf
    return tf.io.gfile


def join(base: str, *parts: str) -> str:
    return '/'.join([base.rstrip('/'), *parts]) if is_uri(base) else os.path.join(base, *parts)


def absolute(path: str) -> str:
    return path.rstrip('/') if is_uri(path) else os.path.abspath(path)


def listdir(path: str) -> List[str]:
    """Child names (no trailing slash); empty if the folder does not exist."""
    try:
        if is_uri(path):
            return [n.rstrip('/') for n in _gfile().listdir(path)]
        return os.listdir(path)
    except (FileNotFoundError, NotADirectoryError):
        return []
    except Exception as e:  # noqa: BLE001 - tf.errors.NotFoundError without importing TF here
        if type(e).__name__ == 'NotFoundError':
            return []
        raise


def isdir(path: str) -> bool:
    return _gfile().isdir(path) if is_uri(path) else os.path.isdir(path)


def isfile(path: str) -> bool:
    if is_uri(path):
        return _gfile().exists(path) and not _gfile().isdir(path)
    return os.path.isfile(path)


def exists(path: str) -> bool:
    return _gfile().exists(path) if is_uri(path) else os.path.exists(path)


def makedirs(path: str) -> None:
    if is_uri(path):
        _gfile().makedirs(path)
    else:
        os.makedirs(path, exist_ok=True)


def read_bytes(path: str) -> bytes:
    if is_uri(path):
        with _gfile().GFile(path, 'rb') as f:
            return f.read()
    with open(path, 'rb') as f:
        return f.read()


def write_text(path: str, text: str) -> None:
    """Replaces the file in one step: a temp file renamed over it (on an object store, a copy over it)."""
    tmp = f'{path}.tmp-{os.getpid()}'
    if is_uri(path):
        with _gfile().GFile(tmp, 'w') as f:
            f.write(text)
        _gfile().rename(tmp, path, overwrite=True)
        return
    with open(tmp, 'w', encoding='utf-8') as f:
        f.write(text)
    os.replace(tmp, path)


def rmtree(path: str) -> None:
    if is_uri(path):
        if _gfile().exists(path):
            _gfile().rmtree(path)
    else:
        shutil.rmtree(path, ignore_errors=True)


def copy_tree(src: str, dst: str) -> None:
    """Copies a folder (src local or URI); on an object store, saved_model.pb is the last object written."""
    if not is_uri(src) and not is_uri(dst):
        shutil.copytree(src, dst)
        return
    gfile = _gfile()
    files = []
    for root, _, names in gfile.walk(src):
        rel_root = root[len(src.rstrip('/')):].strip('/')
        files += [f'{rel_root}/{n}' if rel_root else n for n in names]
    for rel in sorted(files, key=lambda f: f == SAVED_MODEL_PB):
        target = join(dst, *rel.split('/'))
        gfile.makedirs(target.rsplit('/', 1)[0])
        gfile.copy(join(src, *rel.split('/')) if is_uri(src) else os.path.join(src, rel), target, overwrite=False)


@contextlib.contextmanager
def locked(folder: str, name: str) -> Iterator[None]:
    """An exclusive lock across processes on a local folder; object stores have none (last writer wins)."""
    if is_uri(folder):
        yield
        return
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), 'w') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
