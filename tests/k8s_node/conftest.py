"""One real node per test session (about 20 s to Ready once the binaries are built),
shared by the tests of this directory, which run in file order: each scenario starts
from what the one before left, as an operator's session would."""

import json
import shutil
import threading

import pytest

from tests.conftest import require_or_skip
from tests.k8s_node.node import Node, missing, new_base

pytestmark = pytest.mark.real_node


def boot_early() -> Node | None:
    """Build the images and start the node in a thread, at the start of the session
    (tests/conftest.py calls this when real-node tests were collected): the rest of the
    suite runs meanwhile. None when the node cannot start here."""
    if missing() is not None:
        return None
    node = Node(new_base())
    node.boot = threading.Thread(target=node.boot_now, daemon=True)
    node.boot.start()
    return node


@pytest.fixture(scope="session")
def node(request):
    node = getattr(request.config, "kcm_node", None)  # booted early: checked then
    if node is None:
        require_or_skip(missing())  # (once our own node runs, its kubepods exists)
        node = Node(new_base())
    base = node.state.parent
    try:
        if node.boot is not None:
            node.boot.join()
        else:
            node.boot_now()
        if node.failure is not None:
            raise node.failure
        yield node
    finally:
        node.stop()
        timings = {name: round(seconds, 2) for name, seconds in node.timings.items()}
        print(f"\nreal-node timings (s): {json.dumps(timings)}")
        shutil.rmtree(base, ignore_errors=True)
