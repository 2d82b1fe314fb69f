"""kcm's YAML writer: whatever it writes, a YAML 1.1 reader (PyYAML, as go-yaml v2 under
kubectl and Helm) reads back as the same document."""

import math

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from kcm.yamltext import dumps, dumps_all

TRICKY = ["", "yes", "No", "ON", "off", "y", "N", "~", "null", "Null", "true", "1:20",
          "12:30:00", "0x1F", "0o17", "0777", "1_000", "1e3", "+1", "-1", ".5", ".inf", ".NaN",
          "2001-12-14", "- a", "-", "a: b", "a:b", "#x", "a #b", " a", "a ", "=", "<<", "*a",
          "&a", "!x", "|", ">", "%x", "@x", "`x", "'q'", '"q"', "a\\b", "line\nline", "\t",
          "\x00\x07\x1b", "\x85\u2028\u2029", "\ufeff", "\ud800", "é", "日本", "😀",
          "[a]", "{a}", "a,b", "?", "? a", "a\r\nb"]
TEXT = st.text(st.characters()) | st.sampled_from(TRICKY)
SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT
DOCUMENTS = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(TEXT, children,
                                                                      max_size=4),
    max_leaves=25)


@settings(max_examples=500)
@given(DOCUMENTS, st.booleans())
def test_pyyaml_reads_back_the_same_document(document, sort_keys):
    assert yaml.safe_load(dumps(document, sort_keys)) == document


@pytest.mark.parametrize("text", TRICKY)
def test_tricky_strings_stay_strings(text):
    assert yaml.safe_load(dumps({"k": [text]})) == {"k": [text]}


def test_block_style_as_kubectl_writes_it():
    document = {"kind": "Pod", "spec": {"containers": [{"name": "a", "args": ["--x=1", "run"],
                                                        "env": []}], "labels": {}},
                "count": 2, "ratio": 1e16, "on": True, "image": "ghcr.io/k/kcm:0.2.0"}
    assert dumps(document) == (
        "kind: Pod\n"
        "spec:\n"
        "  containers:\n"
        "  - name: a\n"
        "    args:\n"
        '    - "--x=1"\n'
        "    - run\n"
        "    env: []\n"
        "  labels: {}\n"
        "count: 2\n"
        "ratio: 1.0e+16\n"
        '"on": true\n'
        'image: "ghcr.io/k/kcm:0.2.0"\n')
    assert dumps({"b": 1, "a": [[1, 2], []]}, sort_keys=True) == "a:\n- - 1\n  - 2\n- []\nb: 1\n"


def test_special_floats_and_several_documents():
    loaded = list(yaml.safe_load_all(dumps_all([{"a": math.inf}, [-math.inf], "x"])))
    assert loaded == [{"a": math.inf}, [-math.inf], "x"]
    assert math.isnan(yaml.safe_load(dumps(math.nan)))


def test_what_is_not_data_is_refused():
    with pytest.raises(TypeError, match="not YAML serializable"):
        dumps({"a": {1, 2}})
