"""`tfx-tabular schema freeze`: keep the schema the last run inferred, so later runs validate new data against it.

Once the frozen file exists the pipeline imports it (ImportSchemaGen) instead of inferring a new one, and
ExampleValidator reports new categories, missing columns and type drift as anomalies that stop the run.
"""
import os

from tfx_tabular.pipeline.core import storage
from tfx_tabular.pipeline.core.names import metadata_path
from tfx_tabular.pipeline.results.summary import open_store

SCHEMA_FILE = 'schema.pbtxt'


class NoSchemaError(Exception):
    pass


def latest_schema_uri(config) -> str:
    if not os.path.exists(metadata_path(config)):
        raise NoSchemaError(f'no run found in {config.run_path}; run `tfx-tabular run --config ...` once first')
    schemas = open_store(metadata_path(config)).get_artifacts_by_type('Schema')
    if not schemas:
        raise NoSchemaError(f'no schema recorded in {metadata_path(config)}; run the pipeline once first')
    return max(schemas, key=lambda a: (a.create_time_since_epoch, a.id)).uri


def freeze(config) -> str:
    source = os.path.join(latest_schema_uri(config), SCHEMA_FILE)
    target = config.frozen_schema_path
    storage.makedirs(os.path.dirname(target))
    storage.write_bytes(target, storage.read_bytes(source))
    return target
