"""The Evaluator's executor: TFX's, comparing the candidate with the model served when it runs, or with none
(components/served_model/ explains why the served version is read again here), decoding only the columns it
slices on."""
import os
import tempfile
from typing import Any, Dict, List

from absl import logging
from tfx import types
from tfx.components.evaluator import executor as evaluator_executor
from tfx.types import artifact_utils, standard_artifacts, standard_component_specs
from tfx.utils import io_utils, path_utils, proto_utils

from tfx_tabular.components.served_model.executor import (BASE_PATH, BASELINE_SOURCE, BASELINE_VERSION, FOUND, SOURCE,
                                                          VERSION, baseline_found, custom_property, served_version)
from tfx_tabular.pipeline.core import storage


def without_baseline(eval_config_json: str) -> str:
    """The eval config (TFX's JSON) minus the baseline ModelSpec and every change threshold.

    TFMA's own `update_eval_config_with_defaults(has_baseline=False)` does the removal, the same call TFX's
    executor makes when no baseline artifact comes in.
    """
    import tensorflow_model_analysis as tfma
    from tfx.utils import proto_utils
    config = tfma.EvalConfig()
    proto_utils.json_to_proto(eval_config_json, config)
    config = tfma.utils.update_eval_config_with_defaults(config, has_baseline=False, rubber_stamp=True)
    return proto_utils.proto_to_json(config)


def _served_copy(base: str, version: int, folder: str) -> types.Artifact:
    """A Model artifact in `folder` holding a copy of `<base>/<version>`, as ServedModel would have written it."""
    model = standard_artifacts.Model()
    model.uri = folder
    source = storage.join(base, str(version))
    storage.copy_tree(source, path_utils.serving_model_dir(folder))
    model.set_int_custom_property(FOUND, 1)
    model.set_int_custom_property(VERSION, version)
    model.set_string_custom_property(SOURCE, source)
    model.set_string_custom_property(BASE_PATH, base)
    return model


def sliced_schema(schema: types.Artifact, eval_config_json: str, folder: str) -> types.Artifact:
    """A Schema artifact in `folder` keeping only the columns the eval config slices on (maybe none), each without a
    shape (read as a list of values, as TFX reads every column when it gets no schema).

    TFMA turns every column its schema names (with no schema: every column of the examples) into Python values for
    each eval example, and uses them only to slice: the model reads the serialized examples, and the label comes
    from its `transform_features` signature. At 1,000 columns that was most of the Evaluator's time.
    """
    import tensorflow_model_analysis as tfma
    config = tfma.EvalConfig()
    proto_utils.json_to_proto(eval_config_json, config)
    specs = [*config.slicing_specs, *(s for cross in config.cross_slicing_specs
                                     for s in (cross.baseline_spec, *cross.slicing_specs))]
    sliced = {key for spec in specs for key in (*spec.feature_keys, *spec.feature_values)}
    kept = io_utils.SchemaReader().read(io_utils.get_only_uri_in_dir(schema.uri))
    features = [f for f in kept.feature if f.name in sliced]
    del kept.feature[:], kept.sparse_feature[:], kept.weighted_feature[:]  # the last two name dropped columns
    kept.ClearField('tensor_representation_group')
    for feature in features:
        feature.ClearField('shape')
        kept.feature.add().CopyFrom(feature)
    storage.makedirs(folder)
    io_utils.write_pbtxt_file(os.path.join(folder, 'schema.pbtxt'), kept)
    copy = standard_artifacts.Schema()
    copy.uri, copy.id = folder, schema.id  # Kubeflow's entrypoint looks inputs up by id afterwards
    return copy


class Executor(evaluator_executor.Executor):
    """TFX's Evaluator executor, comparing the candidate with the model served when it runs, or with none.

    ServedModel's output can be older than this execution: it is cached with the candidate, and the Evaluator
    also reruns for other reasons (a changed eval config). So the served version is read again here: if it
    changed, that version is copied to a temp folder and evaluated instead; if nothing is served, the baseline
    input, its ModelSpec and the change thresholds are dropped (a first run). The evaluation artifact records
    what was used: custom properties `baseline_version` (0: none) and `baseline_source`. A schema input is cut to
    the columns the eval config slices on (`sliced_schema`).
    """

    def Do(self, input_dict: Dict[str, List[types.Artifact]], output_dict: Dict[str, List[types.Artifact]],
           exec_properties: Dict[str, Any]) -> None:
        key = standard_component_specs.BASELINE_MODEL_KEY
        baseline = (input_dict.get(key) or [None])[0]
        version, temp = None, tempfile.mkdtemp(prefix='evaluator-')
        try:
            if baseline is not None:
                base = custom_property(baseline, BASE_PATH)
                recorded = int(custom_property(baseline, VERSION) or 0) if custom_property(baseline, FOUND) else None
                if base:  # a ServedModel output: what is served now decides
                    version = served_version(base)
                    if version != recorded:
                        logging.info('The served version under %s is now %s (ServedModel recorded %s): using it.',
                                     base, version, recorded)
                        if version is not None:
                            copy = _served_copy(base, version, os.path.join(temp, 'served_model'))
                            copy.id = baseline.id  # Kubeflow's entrypoint looks inputs up by id afterwards
                            baseline = copy
                    if version is None:
                        baseline = None
                elif not baseline_found({key: [baseline]}):  # another Model artifact: its files decide
                    baseline = None
            input_dict = {k: v for k, v in input_dict.items() if k != key}
            exec_properties = dict(exec_properties)
            config_key = standard_component_specs.EVAL_CONFIG_KEY
            if baseline is None:
                if exec_properties.get(config_key):
                    exec_properties[config_key] = without_baseline(exec_properties[config_key])
            else:
                input_dict[key] = [baseline]
            schema_key = standard_component_specs.SCHEMA_KEY
            if input_dict.get(schema_key) and exec_properties.get(config_key):
                input_dict[schema_key] = [sliced_schema(artifact_utils.get_single_instance(input_dict[schema_key]),
                                                        exec_properties[config_key], os.path.join(temp, 'schema'))]
            evaluation = artifact_utils.get_single_instance(output_dict[standard_component_specs.EVALUATION_KEY])
            evaluation.set_int_custom_property(BASELINE_VERSION, version or 0)
            evaluation.set_string_custom_property(BASELINE_SOURCE, '' if baseline is None else (
                custom_property(baseline, SOURCE) or baseline.uri))
            super().Do(input_dict, output_dict, exec_properties)
        finally:
            storage.rmtree(temp)
