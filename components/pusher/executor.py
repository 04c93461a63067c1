"""TFX's Pusher executor, with an atomic push into TF Serving's layout and a models.config kept up to date.

The stock executor copies files straight into `<base>/<version>/`, saved_model.pb last; a server polling
the folder can still see a version whose variables are half-written. This one copies into a hidden staging
folder and renames it into place (serving/push.py), then lists the model in `<push_dir>/models.config`.
Blessing checks, the archived copy in the PushedModel artifact and its `pushed`, `pushed_destination` and
`pushed_version` properties are TFX's own.
"""
from typing import Any, Dict, List

from tfx import types
from tfx.components.pusher import executor as tfx_pusher
from tfx.proto import pusher_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import io_utils, proto_utils

from tfx_tabular.serving.push import push_model


class Executor(tfx_pusher.Executor):
    """Pushes a blessed model to a filesystem destination atomically (see the module docstring)."""

    def Do(self, input_dict: Dict[str, List[types.Artifact]], output_dict: Dict[str, List[types.Artifact]],
           exec_properties: Dict[str, Any]) -> None:
        self._log_startup(input_dict, output_dict, exec_properties)
        model_push = artifact_utils.get_single_instance(output_dict[standard_component_specs.PUSHED_MODEL_KEY])
        if not self.CheckBlessing(input_dict):
            self._MarkNotPushed(model_push)
            return
        model_path = self.GetModelPath(input_dict)
        destination = pusher_pb2.PushDestination()
        proto_utils.json_to_proto(exec_properties[standard_component_specs.PUSH_DESTINATION_KEY], destination)
        kind = destination.WhichOneof('destination')
        if kind != 'filesystem':
            raise NotImplementedError(f'push destination {kind!r}: this Pusher pushes to a filesystem only')
        versioning = destination.filesystem.versioning
        if versioning not in (pusher_pb2.Versioning.AUTO, pusher_pb2.Versioning.UNIX_TIMESTAMP):
            raise NotImplementedError(f'versioning {pusher_pb2.Versioning.Name(versioning)}: use AUTO')
        version, serving_path = push_model(model_path, destination.filesystem.base_directory)
        io_utils.copy_dir(model_path, model_push.uri)  # the archived copy, as TFX's Pusher keeps it
        self._MarkPushed(model_push, pushed_destination=serving_path, pushed_version=str(version))
