"""CsvExampleGen whose memory stays flat as the CSV grows, on Beam's local DirectRunner too.

TFX's CsvExampleGen executor feeds the parsed rows both to column-type inference and, through a side input, to the
conversion, so every parsed row waits in memory until the types are known; it then reshuffles every example before
writing. Beam's local runner keeps both in memory: 7.6 GB of RSS for 1M rows against 4.2 GB for 10k (bench/scale.py).
This executor reads the files twice instead (once to infer the types, once to convert) and, on the local
DirectRunner, writes without the reshuffle: 2.4 GB from 30k to 1M rows, and 2.3x faster. Distributed runners spill
shuffles to disk, so they keep TFX's reshuffle. Output format, component id and outputs are TFX's.

Without the reshuffle, examples keep the CSV's order within each split; the Trainer's shuffle buffer mixes them.
"""
import os
from typing import Any, Dict, List

import apache_beam as beam
from absl import logging
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
from tfx import types
from tfx.components.example_gen import utils, write_split
from tfx.components.example_gen.csv_example_gen import executor as tfx_csv
from tfx.components.util import examples_utils
from tfx.dsl.io import fileio
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import io_utils, proto_utils
from tfx_bsl.coders import csv_decoder


# TFX's own DoFns, reused so records and examples come out exactly as with TFX's executor.
_read_csv_records = tfx_csv._ReadCsvRecordsFromTextFile  # pylint: disable=protected-access
_to_example = tfx_csv._ParsedCsvToTfExample  # pylint: disable=protected-access


class _CsvToExampleInTwoReads(beam.PTransform):
    """CSV files -> tf.Examples: the types come from a first read, so no parsed row waits for them in memory."""

    def __init__(self, exec_properties: Dict[str, Any], split_pattern: str):
        self._pattern = os.path.join(exec_properties[standard_component_specs.INPUT_BASE_KEY], split_pattern)

    def expand(self, pipeline):
        files = fileio.glob(self._pattern)
        if not files:
            raise RuntimeError(f'Split pattern {self._pattern} does not match any files.')
        columns = io_utils.load_csv_column_names(files[0])
        for path in files[1:]:
            if io_utils.load_csv_column_names(path) != columns:
                raise RuntimeError(f'Files in same split {self._pattern} have different header.')

        def parsed_rows(step):
            # TFX's own reader: one file per element, so quoted fields may span lines.
            return (pipeline
                    | f'{step}Files' >> beam.Create(files)
                    | f'{step}Read' >> beam.ParDo(_read_csv_records())
                    | f'{step}Parse' >> beam.ParDo(csv_decoder.ParseCSVLine(delimiter=','))
                    | f'{step}Rows' >> beam.Keys())

        column_types = beam.pvalue.AsSingleton(
            parsed_rows('Types') | 'InferColumnTypes' >> beam.CombineGlobally(
                csv_decoder.ColumnTypeInferrer(columns, skip_blank_lines=True)))
        return parsed_rows('Examples') | 'ToTFExample' >> beam.ParDo(_to_example(), column_types)


@beam.ptransform_fn
def _WriteSplit(examples, path: str, reshuffle: bool):  # pylint: disable=invalid-name
    """TFX's WriteSplit (gzipped TFRecords of serialized examples), its reshuffle optional."""
    serialized = examples | 'Serialize' >> beam.ParDo(write_split.MaybeSerialize())
    if reshuffle:
        serialized = serialized | 'Shuffle' >> beam.transforms.Reshuffle()
    return serialized | 'Write' >> beam.io.WriteToTFRecord(os.path.join(path, write_split.DEFAULT_FILE_NAME),
                                                           file_name_suffix='.gz')


def runs_locally(beam_pipeline_args: List[str]) -> bool:
    """Beam's DirectRunner (the default runner) keeps every shuffled element in memory."""
    runner = PipelineOptions(beam_pipeline_args or []).view_as(StandardOptions).runner
    return runner is None or 'direct' in str(runner).lower()


class Executor(tfx_csv.Executor):
    """TFX's CSV executor with the two-read conversion, and no reshuffle on the local DirectRunner."""

    def GetInputSourceToExamplePTransform(self) -> beam.PTransform:
        return _CsvToExampleInTwoReads

    def Do(self, input_dict: Dict[str, List[types.Artifact]], output_dict: Dict[str, List[types.Artifact]],
           exec_properties: Dict[str, Any]) -> None:
        """BaseExampleGenExecutor.Do with `_WriteSplit` in place of TFX's WriteSplit; TFRecord output only."""
        self._log_startup(input_dict, output_dict, exec_properties)
        input_config = proto_utils.json_to_proto(
            exec_properties[standard_component_specs.INPUT_CONFIG_KEY], example_gen_pb2.Input())
        output_config = proto_utils.json_to_proto(
            exec_properties[standard_component_specs.OUTPUT_CONFIG_KEY], example_gen_pb2.Output())
        outputs = output_dict[standard_component_specs.EXAMPLES_KEY]
        artifact_utils.get_single_instance(outputs).split_names = artifact_utils.encode_split_names(
            utils.generate_output_split_names(input_config, output_config))
        reshuffle = not runs_locally(self._beam_pipeline_args)
        logging.info('Generating examples (reshuffle before writing: %s).', reshuffle)
        with self._make_beam_pipeline() as pipeline:
            for split, examples in self.GenerateExamplesByBeam(pipeline, exec_properties).items():
                _ = examples | f'WriteSplit[{split}]' >> _WriteSplit(  # pylint: disable=no-value-for-parameter
                    artifact_utils.get_split_uri(outputs, split), reshuffle)
        payload_format = exec_properties.get(standard_component_specs.OUTPUT_DATA_FORMAT_KEY)
        file_format = exec_properties.get(standard_component_specs.OUTPUT_FILE_FORMAT_KEY,
                                          example_gen_pb2.FILE_FORMAT_UNSPECIFIED)
        for artifact in outputs:
            if payload_format:
                examples_utils.set_payload_format(artifact, payload_format)
            if file_format:
                examples_utils.set_file_format(artifact, write_split.to_file_format_str(file_format))
        logging.info('Examples generated.')
