"""One real node per test session (about 20 s to Ready once the binaries are built),
shared by the tests of this directory, which run in file order: each scenario starts
from what the one before left, as an operator's session would."""

import json
import shutil

import pytest

from tests.conftest import require_or_skip
from tests.k8s_node.node import Node, missing, new_base

pytestmark = pytest.mark.real_node


@pytest.fixture(scope="session")
def node():
    require_or_skip(missing())
    base = new_base()
    node = Node(base)
    try:
        node.build_images()
        node.start()
        yield node
    finally:
        node.stop()
        timings = {name: round(seconds, 2) for name, seconds in node.timings.items()}
        print(f"\nreal-node timings (s): {json.dumps(timings)}")
        shutil.rmtree(base, ignore_errors=True)
