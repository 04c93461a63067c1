"""pipeline/core/storage.py, the one I/O helper: the same reads and atomic writes on a local folder and on an
object store (ram://, TensorFlow's in-memory file system, stands in for gs:// and s3://)."""
import os
import uuid

import pytest

from tfx_tabular.pipeline.core import storage


@pytest.fixture(params=['local', 'uri'])
def folder(request, tmp_path):
    if request.param == 'local':
        return str(tmp_path)
    import tensorflow as tf
    uri = f'ram://storage-{uuid.uuid4().hex}'
    tf.io.gfile.makedirs(uri)
    return uri


def test_text_and_bytes_round_trip_with_csv_newlines(folder):
    path = storage.join(folder, 'a.csv')
    storage.write_bytes(path, 'a,b\r\n"x\r\ny",é\n'.encode('utf-8'))
    assert storage.read_bytes(path) == 'a,b\r\n"x\r\ny",é\n'.encode('utf-8')
    with storage.open_text(path, newline='') as f:  # newline='' as csv wants, on either file system
        assert f.read() == 'a,b\r\n"x\r\ny",é\n'
    with storage.open_text(path) as f:
        assert f.readlines() == ['a,b\n', '"x\n', 'y",é\n']
    with storage.open_binary(path) as f:
        assert f.readline() == b'a,b\r\n' and f.read(3) == b'"x\r'
    storage.write_text(path, 'new')
    assert storage.read_text(path) == 'new'
    assert storage.stat(path)[0] == 3
    assert storage.glob(storage.join(folder, '*.csv')) == [path]
    assert storage.listdir(folder) == ['a.csv']  # no temp file left beside it


def test_atomic_path_renames_on_success_and_cleans_up_on_failure(folder):
    path = storage.join(folder, 'plot.png')
    storage.write_bytes(path, b'old')
    with pytest.raises(RuntimeError):
        with storage.atomic_path(path) as tmp:
            assert tmp.endswith('.png') and storage.dirname(tmp) == folder  # beside it, same extension
            storage.write_bytes(tmp, b'half')
            raise RuntimeError('writer failed')
    assert storage.read_bytes(path) == b'old' and storage.listdir(folder) == ['plot.png']
    with storage.atomic_path(path) as tmp:
        with storage.open_write(tmp, 'wb') as f:
            f.write(b'new')
        assert storage.read_bytes(path) == b'old'  # readers see the old file until the rename
    assert storage.read_bytes(path) == b'new' and storage.listdir(folder) == ['plot.png']


def test_atomic_open_text(folder):
    path = storage.join(folder, 'out.yaml')
    with storage.atomic_open(path) as f:
        f.write('a: 1\n')
        assert not storage.exists(path)
    assert storage.read_text(path) == 'a: 1\n'


def test_staged_dir_publishes_whole_or_nothing(folder):
    target = storage.join(folder, 'model')
    with pytest.raises(RuntimeError):
        with storage.staged_dir(target) as staging:
            storage.write_text(storage.join(staging, 'x.txt'), 'x')
            raise RuntimeError('failed')
    assert storage.listdir(folder) == []
    with storage.staged_dir(target) as staging:
        storage.makedirs(storage.join(staging, 'variables'))
        storage.write_text(storage.join(staging, 'variables', 'v.txt'), 'v')
        storage.write_text(storage.join(staging, storage.SAVED_MODEL_PB), 'pb')
        assert not storage.exists(target)
    assert storage.listdir(folder) == ['model']
    assert sorted(storage.listdir(target)) == [storage.SAVED_MODEL_PB, 'variables']
    assert storage.read_text(storage.join(target, 'variables', 'v.txt')) == 'v'


def test_publish_into_a_folder_with_files_moves_file_by_file_last_last(tmp_path):
    target, staging = tmp_path / 'out', tmp_path / 'staging'
    target.mkdir()
    (target / 'keep.txt').write_text('k')
    staging.mkdir()
    for name in ('config.pbtxt', 'a.tsv'):
        (staging / name).write_text(name)
    storage.publish_dir(str(staging), str(target), last=['config.pbtxt'])
    assert sorted(os.listdir(target)) == ['a.tsv', 'config.pbtxt', 'keep.txt'] and not staging.exists()
    assert storage._last_ordered(['config.pbtxt', 'b/saved_model.pb', 'z.tsv'], ['config.pbtxt']) == \
        ['b/saved_model.pb', 'z.tsv', 'config.pbtxt']


def test_uri_checks():
    assert storage.is_uri('gs://b/x.csv') and storage.is_uri('s3://b/x') and not storage.is_uri('/tmp/x.csv')
    assert storage.join('gs://b/', 'a', 'b.csv') == 'gs://b/a/b.csv'
    assert storage.dirname('gs://b/a/b.csv') == 'gs://b/a' and storage.basename('gs://b/a/') == 'a'
    assert storage.listdir('ram://nothing-here') == [] and storage.listdir('/nonexistent/x') == []


def test_a_uri_this_machine_cannot_read_is_named_with_the_fix(tmp_path):
    """s3:// needs tensorflow-io, not installed here: `validate` and `run` say so in one line, no traceback."""
    with pytest.raises(storage.StorageError, match=r"^s3://b/x/\*\.csv: TensorFlow has no s3:// file system on "
                                                   r"this machine; pip install tensorflow-io \(it adds s3://\)"):
        storage.glob('s3://b/x/*.csv')
    from tests.conftest import run_cli
    config = tmp_path / 'config.yaml'
    config.write_text("name: s3\ndata: {csv: 's3://b/x.csv'}\nlabel: {column: y, type: binary}\n"
                      "features: {a: {kind: numeric}}\nserving: {model_name: s3, push_dir: serving}\n")
    for command in ('validate', 'run'):
        result = run_cli(command, '--config', str(config))
        assert result.returncode == 2 and 'Traceback' not in result.stderr, result.stderr
        assert result.stderr.splitlines()[-1] == (  # after TensorFlow's start-up log lines
            'data error: s3://b/x.csv: TensorFlow has no s3:// file system on this machine; pip install '
            'tensorflow-io (it adds s3://), or copy the data to a local folder'), result.stderr
