"""Running a pass every N seconds until SIGTERM or SIGINT, which end the loop only
between passes (a pass is never cut short in the middle of a write)."""

import signal
import time
from collections.abc import Callable

from kcm import log
from kcm.errors import KcmError

STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}


def hold_stop_signals() -> None:
    """Block SIGTERM and SIGINT; call before starting any thread, so that every thread
    inherits the mask (a thread with them unblocked would die of the default action)."""
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)


def repeat(interval: float, one_pass: Callable[[], None], what: str,
           woken: Callable[[float], bool] | None = None) -> int:
    """Run ``one_pass`` every ``interval`` seconds until a stop signal; a pass that fails
    with a KcmError is logged and the loop goes on. Exit status 0.

    With ``woken`` (waits up to the seconds given, True when there is work) a pass also
    runs as soon as it says so; stop signals are then looked at every 50 ms."""
    hold_stop_signals()
    while True:
        try:
            one_pass()
        except KcmError as error:
            log.log("ERROR", f"{what} failed: {error}")
        if woken is None:
            if signal.sigtimedwait(STOP_SIGNALS, interval) is not None:
                return 0
            continue
        deadline = time.monotonic() + interval
        while (left := deadline - time.monotonic()) > 0:
            if signal.sigtimedwait(STOP_SIGNALS, 0) is not None:
                return 0
            if woken(min(left, 0.05)):
                break
