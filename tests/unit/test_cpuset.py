import pytest
from hypothesis import given
from hypothesis import strategies as st

from kcm.cpuset import format_cpulist, format_mask, parse_cpulist
from kcm.errors import CpuListError


@pytest.mark.parametrize(("text", "cpus"), [
    ("", set()),
    ("\n", set()),
    ("0", {0}),
    ("0-2,8-10", {0, 1, 2, 8, 9, 10}),
    ("4,12", {4, 12}),
    ("3-3", {3}),
    ("10,2,5-6\n", {2, 5, 6, 10}),
])
def test_parse_accepts_the_linux_format(text, cpus):
    assert parse_cpulist(text) == cpus


@pytest.mark.parametrize("text", ["3-1", "0-1-2", "1,,2", "-1", "a", "1-", ",1", "1,", " 1 ,2",
                                  "0x1", "+1", "1.5", "\u0661"])
def test_parse_rejects_bad_text_naming_it(text):
    with pytest.raises(CpuListError) as caught:
        parse_cpulist(text)
    assert repr(text) in str(caught.value)


@pytest.mark.parametrize(("cpus", "text"), [
    (set(), ""),
    ({0}, "0"),
    ({0, 1}, "0-1"),
    ({4, 12}, "4,12"),
    ({10, 0, 1, 2, 8, 9}, "0-2,8-10"),
    ({1, 3, 5}, "1,3,5"),
])
def test_format_is_canonical(cpus, text):
    assert format_cpulist(cpus) == text


def test_mask_is_hex_of_cpu_bits():
    assert format_mask({0}) == "0x1"
    assert format_mask({4, 5, 6, 7}) == "0xf0"
    assert format_mask({64}) == "0x10000000000000000"


@given(st.frozensets(st.integers(min_value=0, max_value=4096)))
def test_format_then_parse_round_trips(cpus):
    assert parse_cpulist(format_cpulist(cpus)) == cpus
