"""kcm's JSON writer gives what ``json.dumps(sort_keys=True)`` gives, byte for byte."""

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kcm.jsontext import dumps

SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text())
DOCUMENTS = st.recursive(
    SCALARS,
    lambda children: st.one_of(st.lists(children, max_size=4),
                               st.dictionaries(st.text(max_size=6), children, max_size=4)),
    max_leaves=30)


@given(DOCUMENTS, st.sampled_from([None, 0, 2, 4]))
def test_same_text_as_json(document, indent):
    assert dumps(document, indent) == json.dumps(document, sort_keys=True, indent=indent)


def test_tuples_and_non_string_keys():
    document = {"b": (1, 2), 3: None, "a": {"x": []}}
    document = {str(k): v for k, v in document.items()}
    assert dumps(document, 2) == json.dumps(document, sort_keys=True, indent=2)
    assert dumps({1: "a", 2: "b"}) == json.dumps({1: "a", 2: "b"}, sort_keys=True)


def test_what_json_refuses_is_refused():
    with pytest.raises(TypeError, match="not JSON serializable"):
        dumps({"a": {1, 2}})
