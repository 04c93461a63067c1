"""Any CSV header works: the one mapping from column names to the identifiers TensorFlow needs."""
import keyword

import pytest

from tfx_tabular.transforms.preprocessing import argument_keys, feature_key, transformed_name

AWKWARD = ['class', 'for', 'age (years)', '$ income', 'type/kind-é', '2nd choice', 'a.b-c', 'Name', 'name',
           'größe', '年齢', ' padded ', 'a b', 'a_b', 'A b', '_private', 'x' * 100]


def test_plain_identifiers_keep_their_name():
    assert [feature_key(c) for c in ('age', 'JobRole', 'bill_length_mm')] == ['age', 'JobRole', 'bill_length_mm']
    assert transformed_name('JobRole') == 'JobRole_xf'


@pytest.mark.parametrize('column', AWKWARD)
def test_every_key_is_an_identifier_and_a_valid_tensorflow_name(column):
    import re
    key = feature_key(column)
    assert key.isidentifier() and not keyword.iskeyword(key), key
    # TensorFlow's node and scope names: what Keras layers, placeholders and name scopes accept.
    assert re.fullmatch(r'[A-Za-z0-9.][A-Za-z0-9_.\-/>]*', key), key
    assert feature_key(column) == key  # the same every time: models and their vocabularies must agree


def test_distinct_columns_get_distinct_keys():
    keys = [feature_key(c) for c in AWKWARD]
    assert len(set(keys)) == len(AWKWARD)


def test_argument_keys_are_distinct_ignoring_case():
    """TensorFlow uniquifies op names ignoring case, so `Name` and `name` need keys that differ in more than case."""
    keys = argument_keys(AWKWARD)
    assert list(keys) == AWKWARD
    assert len({k.lower() for k in keys.values()}) == len(AWKWARD)
    assert keys['Name'] == 'Name' and keys['name'] != 'name'
