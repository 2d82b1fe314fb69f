"""Fuzzing with hypothesis: garbage in gets a KcmError naming it, never a traceback or
a hang. Short in CI; the documented long run sets KCM_FUZZ_EXAMPLES (e.g. 20000)."""

import json
import os
import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kcm.cpuset import parse_cpulist
from kcm.errors import ConfigError, CpuListError, TopologyError
from kcm.mutate import WorkloadSettings
from kcm.state import ConfigDir
from kcm.sysfs import read_topology
from kcm.topology import isolcpus_from_cmdline
from kcm.webhook import BadReview, review_response
from tests.machines import build_sysfs, xeon_d1541

EXAMPLES = int(os.environ.get("KCM_FUZZ_EXAMPLES", "200"))
# A fixed seed in CI (the same examples every run); a long run explores afresh.
FUZZ = settings(max_examples=EXAMPLES, deadline=None,
                derandomize="KCM_FUZZ_EXAMPLES" not in os.environ,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
CPU_TEXT = st.text(alphabet="0123456789-,: \nabx", max_size=40) | st.text(max_size=20)


@FUZZ
@given(CPU_TEXT)
def test_cpu_list_parser(text):
    try:
        cpus = parse_cpulist(text)
    except CpuListError as error:
        assert repr(text) in str(error)
    else:
        assert all(0 <= cpu <= 16383 for cpu in cpus)


@FUZZ
@given(st.lists(st.one_of(
    st.builds(lambda v: f"isolcpus={v}", CPU_TEXT),
    st.builds(lambda f, v: f"isolcpus={f},{v}",
              st.sampled_from(["domain", "nohz", "managed_irq", "bogus", "domain,nohz"]),
              CPU_TEXT),
    st.text(max_size=15)), max_size=6))
def test_isolcpus_parser(words):
    cmdline = " ".join(words)
    try:
        isolated = isolcpus_from_cmdline(cmdline)
    except TopologyError as error:
        assert "isolcpus=" in str(error)
    else:
        assert isinstance(isolated, frozenset)


SYSFS_TEMPLATE = Path(tempfile.mkdtemp(prefix="kcm-fuzz-sysfs-"))
build_sysfs(xeon_d1541(), SYSFS_TEMPLATE)
SYSFS_FILES = sorted(os.path.relpath(os.path.join(top, name), SYSFS_TEMPLATE)
                     for top, _, names in os.walk(SYSFS_TEMPLATE) for name in names
                     if not os.path.islink(os.path.join(top, name)))
GARBAGE = st.one_of(st.binary(max_size=30), st.sampled_from(
    [b"", b"-1\n", b"0-999999\n", b"3-1", b"\xff\xfe", b"0,,1", b"99999999999999999999"]))


@FUZZ
@given(st.lists(st.tuples(st.sampled_from(SYSFS_FILES),
                          st.one_of(st.none(), GARBAGE)), max_size=6))
def test_sysfs_reader(damage):
    root = Path(tempfile.mkdtemp(prefix="kcm-fuzz-"))
    try:
        shutil.copytree(SYSFS_TEMPLATE, root, dirs_exist_ok=True, symlinks=True)
        for name, content in damage:
            path = root / name
            if content is None:
                path.unlink(missing_ok=True)
            elif path.exists():
                path.write_bytes(content)
        try:
            topology = read_topology(str(root / "sys"), str(root / "proc"))
        except TopologyError as error:
            assert str(root) in str(error) or "isolcpus=" in str(error) or "no " in str(error)
        else:
            assert topology.online
    finally:
        shutil.rmtree(root)


NAMES = st.one_of(st.sampled_from(["pools", "lock", "tasks", "task-info", "exclusive", "0",
                                   "0-1", "3-1", ".kcm-tmp-x", "dataplane", "a b", "x,,y"]),
                  st.text(alphabet="abc019-,._", min_size=1, max_size=8))
CONTENT = st.one_of(st.sampled_from([b"", b"1", b"0", b"12,13", b"x", b"1,1", b"-5",
                                     b"1 2 - -\n", b"1 2 3\n", b"9" * 5000,
                                     b"1 " + b"9" * 5000 + b" - -\n", b"1 1 - -\n1 2 - -\n",
                                     b"0 1 2 3\n"]), st.binary(max_size=40))


@FUZZ
@given(st.lists(st.tuples(
    st.lists(NAMES, min_size=1, max_size=4), st.one_of(CONTENT, st.just("dir"),
                                                     st.just("symlink"), st.just("huge"))),
    max_size=10))
def test_configuration_directory_loader(entries):
    root = Path(tempfile.mkdtemp(prefix="kcm-fuzz-conf-"))
    try:
        for parts, content in entries:
            path = root.joinpath(*parts)
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                if content == "dir":
                    path.mkdir(exist_ok=True)
                elif content == "symlink":
                    os.symlink("/etc", path)
                elif content == "huge":
                    path.write_bytes(b"1," * (600 * 1024))
                else:
                    path.write_bytes(content)
            except OSError:
                continue
        try:
            config = ConfigDir(str(root)).load()
        except ConfigError as error:
            assert str(root) in str(error)
        else:
            assert isinstance(config.pools, dict)
    finally:
        shutil.rmtree(root, ignore_errors=True)


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=10),
                    lambda children: st.lists(children, max_size=4)
                    | st.dictionaries(st.text(max_size=10), children, max_size=4),
                    max_leaves=20)
CONTAINER = st.fixed_dictionaries({"name": st.text(max_size=4)}, optional={
    "resources": st.fixed_dictionaries({}, optional={
        "limits": st.dictionaries(
            st.sampled_from(["kcm.dev/dataplane-cores", "cpu", "kcm.dev/x"]),
            st.text(max_size=3) | st.integers()) | JSON}) | JSON,
    "env": st.lists(JSON, max_size=2) | JSON,
    "volumeMounts": st.lists(JSON, max_size=2) | JSON}) | JSON
POD = st.fixed_dictionaries({
    "metadata": st.fixed_dictionaries({}, optional={
        "annotations": st.dictionaries(st.sampled_from(["kcm.dev/pool", "kcm.dev/mutated", "x"]),
                                       st.text(max_size=4)) | JSON}) | JSON,
    "spec": st.fixed_dictionaries({}, optional={
        "containers": st.lists(CONTAINER, max_size=3) | JSON,
        "volumes": st.lists(JSON, max_size=2) | JSON}) | JSON,
}) | JSON
REVIEW_KEYS = st.fixed_dictionaries({
    "apiVersion": st.sampled_from(["admission.k8s.io/v1", "admission.k8s.io/v1beta1"]),
    "kind": st.sampled_from(["AdmissionReview", "Pod"]),
    "request": st.fixed_dictionaries({
        "uid": st.text(max_size=5) | st.integers(),
        "kind": st.fixed_dictionaries({"group": st.sampled_from(["", "apps"]),
                                       "kind": st.sampled_from(["Pod", "Deployment"])}) | JSON,
        "operation": st.sampled_from(["CREATE", "UPDATE"]),
        "object": POD,
    }) | JSON,
})


WELL_SHAPED_CONTAINER = st.fixed_dictionaries({
    "name": st.sampled_from(["a", "b", "c"]),
    "resources": st.fixed_dictionaries({}, optional={
        "limits": st.dictionaries(st.sampled_from(["kcm.dev/dataplane-cores", "cpu", "kcm.dev/x"]),
                                  st.sampled_from(["1", "2", "x", "99999999"]), max_size=2),
        "requests": st.dictionaries(st.sampled_from(["kcm.dev/dataplane-cores", "memory"]),
                                    st.sampled_from(["1", "3"]), max_size=2)}),
}, optional={"env": st.lists(st.fixed_dictionaries({"name": st.sampled_from(
    ["KCM_CONF_DIR", "OTHER"]), "value": st.just("v")}), max_size=2),
    "volumeMounts": st.lists(st.fixed_dictionaries({
        "name": st.sampled_from(["kcm-conf", "data"]), "mountPath": st.just("/x")}),
        max_size=2)})
WORKLOAD_REVIEW = st.fixed_dictionaries({
    "apiVersion": st.just("admission.k8s.io/v1"), "kind": st.just("AdmissionReview"),
    "request": st.fixed_dictionaries({
        "uid": st.just("u"), "kind": st.just({"group": "", "kind": "Pod"}),
        "operation": st.just("CREATE"),
        "object": st.fixed_dictionaries({
            "metadata": st.fixed_dictionaries({}, optional={"annotations": st.dictionaries(
                st.sampled_from(["kcm.dev/pool", "x"]), st.just("dataplane"), max_size=2)}),
            "spec": st.fixed_dictionaries({
                "containers": st.lists(WELL_SHAPED_CONTAINER, min_size=1, max_size=3)},
                optional={"initContainers": st.lists(WELL_SHAPED_CONTAINER, max_size=2),
                          "volumes": st.lists(st.fixed_dictionaries(
                              {"name": st.sampled_from(["kcm-conf", "data"])}), max_size=2)}),
        }),
    }),
})
"""Well-formed pods that are mostly kcm workloads: every path of ``patch_for`` runs."""


@FUZZ
@given(st.one_of(REVIEW_KEYS.map(lambda d: json.dumps(d).encode()),
                 WORKLOAD_REVIEW.map(lambda d: json.dumps(d).encode()),
                 JSON.map(lambda d: json.dumps(d).encode()), st.binary(max_size=60)))
def test_webhook_review_handling(body):
    try:
        answer = review_response(body, WorkloadSettings())
    except BadReview as error:
        assert 400 <= error.status < 500 and str(error)
    else:
        assert answer["response"]["allowed"] is True
