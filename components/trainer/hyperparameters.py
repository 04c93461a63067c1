"""The tuned hyperparameters: the keras-tuner search space of a model's `tuning` section, and the Tuner's best values
applied to the model's settings (by the Tuner's trials and by run_fn alike, so both build the same model)."""
import copy
from typing import Any, Dict, List, Optional, Union

import keras_tuner

TUNABLE = ('hidden_units', 'learning_rate', 'dropout')


def _units_key(units: List[int]) -> str:
    """keras-tuner choices must be scalars: [64, 32] is the choice '64,32'."""
    return ','.join(str(int(u)) for u in units)


def _units(value: Union[str, List[int]]) -> List[int]:
    return [int(u) for u in value.split(',')] if isinstance(value, str) else [int(u) for u in value]


def search_space(tuning: Dict) -> keras_tuner.HyperParameters:
    """The keras-tuner space of a `tuning` dict (TuningConfig dumped to JSON)."""
    hp = keras_tuner.HyperParameters()
    if tuning.get('hidden_units'):
        hp.Choice('hidden_units', [_units_key(u) for u in tuning['hidden_units']])
    if tuning.get('learning_rate'):
        hp.Float('learning_rate', tuning['learning_rate']['min'], tuning['learning_rate']['max'], sampling='log')
    if tuning.get('dropout'):
        hp.Choice('dropout', [float(d) for d in tuning['dropout']])
    if not hp.space:
        raise ValueError('tuning: the search space is empty; give hidden_units, learning_rate or dropout')
    return hp


def apply_hyperparameters(model_cfg: Dict, hparams: Optional[Union[Dict, keras_tuner.HyperParameters]]) -> Dict:
    """`model_cfg` with the tuned values in place; a new dict, `model_cfg` is not changed.

    `hparams` is what the Trainer gets as `fn_args.hyperparameters`: TFX reads the Tuner's best_hyperparameters
    file, `HyperParameters.get_config()` as JSON ({'space': [...], 'values': {...}}). A plain {name: value} dict or
    a HyperParameters object work too; None (no Tuner upstream) returns an unchanged copy. A name this module does
    not tune is an error: it means the Tuner and the Trainer disagree about the space.
    """
    result = copy.deepcopy(model_cfg)
    if hparams is None:
        return result
    if isinstance(hparams, keras_tuner.HyperParameters):
        values = hparams.values
    elif isinstance(hparams, dict) and 'values' in hparams and isinstance(hparams['values'], dict):
        values = hparams['values']
    elif isinstance(hparams, dict):
        values = hparams
    else:
        raise TypeError(f'hyperparameters: expected a dict or keras_tuner.HyperParameters, got {type(hparams)}')
    unknown = sorted(set(values) - set(TUNABLE))
    if unknown:
        raise ValueError(f'hyperparameters: {", ".join(unknown)} cannot be applied; tunable: {", ".join(TUNABLE)}')
    if 'hidden_units' in values:
        result['hidden_units'] = _units(values['hidden_units'])
    if 'learning_rate' in values:
        result['learning_rate'] = float(values['learning_rate'])
    if 'dropout' in values:
        result['dropout'] = float(values['dropout'])
    return result


def best_values(hparams: Optional[Dict]) -> Dict[str, Any]:
    """The tuned values in config terms (hidden_units as a list), for logs and the run summary."""
    if not hparams:
        return {}
    applied = apply_hyperparameters({}, hparams)
    return {k: applied[k] for k in TUNABLE if k in applied}
