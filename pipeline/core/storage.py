"""The project's one I/O helper: files and folders that are local paths or object-storage URIs (gs://, s3://, ...).

Local paths use the os module (fast, no TensorFlow import, atomic renames); URIs use tf.io.gfile, as TFX and TF
Serving do (gs:// is built in; s3:// needs tensorflow-io installed; ram:// is TF's in-memory file system, which
tests use). Every write that a reader may race goes through `atomic_*`/`staged_dir`: the content is written beside
its target and renamed into place, so no reader sees half a file. Object stores have no atomic rename: there a
rename is a copy, and a folder is moved file by file with the files named `last` (saved_model.pb, a config)
written last, the same safeguard as TFX's own Pusher.
"""
import contextlib
import fcntl
import glob as _glob
import io
import os
import shutil
import uuid
from typing import IO, Iterable, Iterator, List, Tuple

SAVED_MODEL_PB = 'saved_model.pb'


class StorageError(OSError):
    """A URI this machine cannot reach: the message names it, TensorFlow's reason (`reason`) and the fix."""

    def __init__(self, message: str, reason: str = ''):
        super().__init__(message)
        self.reason = reason

    def __str__(self) -> str:
        return self.args[0]


def _reason(error: Exception) -> str:
    return (getattr(error, 'message', None) or str(error)).splitlines()[0].strip()


def uri_problem(path: str, error: Exception) -> str:
    """One line for a tf.io.gfile error on `path`: which file system or access is missing and what to do."""
    scheme = path.split('://', 1)[0]
    if type(error).__name__ == 'UnimplementedError':
        plugin = 'pip install tensorflow-io (it adds s3://)' if scheme == 's3' else \
            f'install the TensorFlow file-system plugin for {scheme}://'
        return (f'{path}: TensorFlow has no {scheme}:// file system on this machine; {plugin}, or copy the data to '
                'a local folder')
    return (f'{path}: cannot read it from here ({_reason(error)}); check the URI and this machine\'s access (gs://: gcloud '
            'auth application-default login; s3://: the AWS_* and S3_ENDPOINT variables), or copy the data to a '
            'local folder')


def is_uri(path: str) -> bool:
    """A path with a scheme (gs://, s3://, ram://): read and written through tf.io.gfile."""
    return '://' in str(path)


def _gfile():
    import tensorflow as tf
    return tf.io.gfile


def _not_found(e: Exception) -> bool:
    return isinstance(e, (FileNotFoundError, NotADirectoryError)) or type(e).__name__ == 'NotFoundError'


def join(base: str, *parts: str) -> str:
    return '/'.join([base.rstrip('/'), *parts]) if is_uri(base) else os.path.join(base, *parts)


def dirname(path: str) -> str:
    return path.rstrip('/').rsplit('/', 1)[0] if is_uri(path) else os.path.dirname(path)


def basename(path: str) -> str:
    return path.rstrip('/').rsplit('/', 1)[-1] if is_uri(path) else os.path.basename(path)


def absolute(path: str) -> str:
    return path.rstrip('/') if is_uri(path) else os.path.abspath(path)


# ---- looking -----------------------------------------------------------------------------------------------

def listdir(path: str) -> List[str]:
    """Child names (no trailing slash); empty if the folder does not exist."""
    try:
        if is_uri(path):
            return [n.rstrip('/') for n in _gfile().listdir(path)]
        return os.listdir(path)
    except Exception as e:  # noqa: BLE001 - tf.errors.NotFoundError without importing TF here
        if _not_found(e):
            return []
        raise


def glob(pattern: str) -> List[str]:
    """The files matching `pattern`, sorted; a StorageError naming the fix when a URI cannot be listed."""
    if not is_uri(pattern):
        return sorted(_glob.glob(pattern))
    try:
        return sorted(_gfile().glob(pattern))
    except Exception as e:  # noqa: BLE001 - tf.errors.OpError (no file system for the scheme, no access)
        if type(e).__module__.startswith('tensorflow'):
            raise StorageError(uri_problem(pattern, e), _reason(e)) from None
        raise


def isdir(path: str) -> bool:
    return _gfile().isdir(path) if is_uri(path) else os.path.isdir(path)


def isfile(path: str) -> bool:
    if is_uri(path):
        return _gfile().exists(path) and not _gfile().isdir(path)
    return os.path.isfile(path)


def exists(path: str) -> bool:
    return _gfile().exists(path) if is_uri(path) else os.path.exists(path)


def stat(path: str) -> Tuple[int, int]:
    """(size in bytes, modification time in ns) of a file."""
    if is_uri(path):
        st = _gfile().stat(path)
        return int(st.length), int(st.mtime_nsec)
    st = os.stat(path)
    return st.st_size, st.st_mtime_ns


# ---- reading -----------------------------------------------------------------------------------------------

class _RawGFile(io.RawIOBase):
    """tf.io.gfile.GFile as a raw stream, so io's buffered and text layers (universal newlines, newline='',
    incremental decoding) read an object-store file exactly as they read a local one."""

    def __init__(self, path: str):
        super().__init__()
        self._f = _gfile().GFile(path, 'rb')

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self._f.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._f.close()
        super().close()


def open_binary(path: str) -> IO[bytes]:
    """A file opened for reading bytes, local or object storage (a buffered stream: read, readline, iteration)."""
    if is_uri(path):
        return io.BufferedReader(_RawGFile(path), buffer_size=1 << 20)
    return open(path, 'rb')


def open_text(path: str, encoding: str = 'utf-8', newline=None, errors: str = 'strict') -> IO[str]:
    """A file opened for reading text, local or object storage, with open()'s `newline` (pass '' for csv)."""
    if is_uri(path):
        return io.TextIOWrapper(open_binary(path), encoding=encoding, newline=newline, errors=errors)
    return open(path, encoding=encoding, newline=newline, errors=errors)


def read_bytes(path: str) -> bytes:
    with open_binary(path) as f:
        return f.read()


def read_text(path: str, encoding: str = 'utf-8') -> str:
    with open_text(path, encoding) as f:
        return f.read()


# ---- writing -----------------------------------------------------------------------------------------------

def makedirs(path: str) -> None:
    if is_uri(path):
        _gfile().makedirs(path)
    else:
        os.makedirs(path, exist_ok=True)


def _temp_beside(path: str) -> str:
    """A unique name in the target's folder (same file system, so the rename is atomic locally); the target's
    extension is kept, for writers that choose a format by it (matplotlib's savefig)."""
    folder, name = dirname(path), basename(path)
    stem, ext = os.path.splitext(name)
    return join(folder, f'.{stem}.tmp-{uuid.uuid4().hex[:12]}{ext}')


def _rename_over(src: str, dst: str) -> None:
    if is_uri(dst):
        _gfile().rename(src, dst, overwrite=True)
    else:
        os.replace(src, dst)


def _remove_quietly(path: str) -> None:
    try:
        if is_uri(path):
            if _gfile().exists(path):
                _gfile().remove(path)
        elif os.path.lexists(path):
            os.unlink(path)
    except Exception:  # noqa: BLE001 - cleanup after another failure: that failure is the one to report
        pass


@contextlib.contextmanager
def atomic_path(path: str) -> Iterator[str]:
    """A temporary path beside `path` for a writer that needs a file name (savefig, tf APIs); on success it is
    renamed over `path`, on failure removed. Readers see the old file or the new one, never half of one."""
    tmp = _temp_beside(path)
    try:
        yield tmp
        _rename_over(tmp, path)
    except BaseException:
        _remove_quietly(tmp)
        raise


@contextlib.contextmanager
def atomic_open(path: str, mode: str = 'w', encoding: str = 'utf-8', newline=None) -> Iterator[IO]:
    """A file opened for writing (`mode` 'w' or 'wb') that replaces `path` in one step when the block ends
    without an exception (see atomic_path)."""
    with atomic_path(path) as tmp, open_write(tmp, mode, encoding, newline) as f:
        yield f


def open_write(path: str, mode: str = 'w', encoding: str = 'utf-8', newline=None) -> IO:
    """A file opened for writing in place (mode 'w' or 'wb'), local or object storage; for files inside a
    folder that `staged_dir` publishes, or nobody reads while it is written. Otherwise use atomic_open."""
    if mode not in ('w', 'wb'):
        raise ValueError(f'mode must be w or wb, got {mode!r}')
    if is_uri(path):
        raw = _gfile().GFile(path, 'wb')
        if mode == 'wb':
            return raw
        return io.TextIOWrapper(_Writable(raw), encoding=encoding, newline=newline)
    if mode == 'wb':
        return open(path, 'wb')
    return open(path, 'w', encoding=encoding, newline=newline)


class _Writable(io.RawIOBase):
    def __init__(self, f):
        super().__init__()
        self._f = f

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self._f.write(bytes(data))
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._f.close()
        super().close()


def write_bytes(path: str, data: bytes) -> None:
    """Replaces the file in one step: a temp file beside it renamed over it (on an object store, a copy)."""
    with atomic_open(path, 'wb') as f:
        f.write(data)


def write_text(path: str, text: str, encoding: str = 'utf-8') -> None:
    """Replaces the file in one step (see write_bytes)."""
    with atomic_open(path, 'w', encoding) as f:
        f.write(text)


def rmtree(path: str) -> None:
    if is_uri(path):
        if _gfile().exists(path):
            _gfile().rmtree(path)
    else:
        shutil.rmtree(path, ignore_errors=True)


def _files_under(folder: str) -> List[str]:
    """Paths of every file under `folder`, relative to it, '/'-separated."""
    if not is_uri(folder):
        return sorted(os.path.relpath(os.path.join(root, n), folder).replace(os.sep, '/')
                      for root, _, names in os.walk(folder) for n in names)
    files = []
    for root, _, names in _gfile().walk(folder):
        rel_root = root[len(folder.rstrip('/')):].strip('/')
        files += [f'{rel_root}/{n}' if rel_root else n for n in names]
    return sorted(files)


def _last_ordered(files: List[str], last: Iterable[str]) -> List[str]:
    """`files` with those named in `last` moved to the end, in `last`'s order."""
    rank = {name: i + 1 for i, name in enumerate(last)}
    return sorted(files, key=lambda rel: rank.get(rel.rsplit('/', 1)[-1], 0))


def copy_tree(src: str, dst: str) -> None:
    """Copies a folder (src local or URI) into `dst` (created if missing); on an object store, saved_model.pb is
    the last object written."""
    if not is_uri(src) and not is_uri(dst):
        shutil.copytree(src, dst, dirs_exist_ok=True)
        return
    gfile = _gfile()
    for rel in _last_ordered(_files_under(src), (SAVED_MODEL_PB,)):
        target = join(dst, *rel.split('/'))
        gfile.makedirs(dirname(target))
        gfile.copy(join(src, *rel.split('/')), target, overwrite=False)


def publish_dir(staging: str, target: str, last: Iterable[str] = (SAVED_MODEL_PB,)) -> None:
    """Moves the finished folder `staging` to `target`. Locally, when `target` is absent or an empty folder, one
    rename: readers see all of it at once. Otherwise (an object store, or a local folder with files already)
    file by file over what is there, the files named in `last` last, then `staging` is removed."""
    if not is_uri(target) and not is_uri(staging) and not (os.path.isdir(target) and os.listdir(target)):
        os.replace(staging, target)
        return
    for rel in _last_ordered(_files_under(staging), last):
        dst = join(target, *rel.split('/'))
        makedirs(dirname(dst))
        _rename_over(join(staging, *rel.split('/')), dst)
    rmtree(staging)


@contextlib.contextmanager
def staged_dir(target: str, last: Iterable[str] = (SAVED_MODEL_PB,)) -> Iterator[str]:
    """A new empty folder beside `target` to fill; published to `target` (publish_dir) when the block ends
    without an exception, removed when it raises."""
    staging = join(dirname(target), f'.{basename(target)}.staging-{uuid.uuid4().hex[:12]}')
    makedirs(staging)
    try:
        yield staging
        publish_dir(staging, target, last)
    finally:
        if exists(staging):
            rmtree(staging)


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
