"""Diagnostics on stderr, filtered by ``KCM_LOG_LEVEL``; no logging import on the
``isolate`` start-up path."""

import sys

from kcm import env

_LEVELS = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40}


def enabled(level: str) -> bool:
    wanted = env.log_level()
    return _LEVELS[level] >= _LEVELS.get(wanted, 20)


def log(level: str, message: str) -> None:
    if enabled(level):
        print(f"kcm: {level.lower()}: {message}", file=sys.stderr, flush=True)


def warning(message: str) -> None:
    log("WARNING", message)


_SAID: set[str] = set()


def once(message: str, level: str = "WARNING") -> None:
    """Log ``message`` the first time this process says it (a loop's steady state)."""
    if message not in _SAID:
        _SAID.add(message)
        log(level, message)


def info(message: str) -> None:
    log("INFO", message)


def debug(message: str) -> None:
    log("DEBUG", message)


class Progress:
    """One line of progress on a terminal (stderr), redrawn at most ten times a second;
    nothing at all when stderr is not a terminal, so logs stay quiet."""

    def __init__(self, what: str, total: int, unit: str = "MB", scale: int = 1 << 20):
        self.what, self.total, self.unit, self.scale = what, total, unit, scale
        self.done = 0
        self.shown = 0.0
        self.on = sys.stderr.isatty()

    def advance(self, amount: int) -> None:
        import time

        self.done += amount
        now = time.monotonic()
        if self.on and now - self.shown >= 0.1:
            self.shown = now
            self._draw("\r")

    def finish(self) -> None:
        if self.on:
            self.done = self.total
            self._draw("\r")
            print(file=sys.stderr, flush=True)

    def abandon(self) -> None:
        """End the line where it stands (the work failed; its error comes next)."""
        if self.on and self.done:
            print(file=sys.stderr, flush=True)

    def _draw(self, start: str) -> None:
        done, total = self.done / self.scale, self.total / self.scale
        places = 0 if self.scale == 1 else 1
        print(f"{start}kcm: {self.what}: {done:.{places}f} of {total:.{places}f} {self.unit}",
              end="",
              file=sys.stderr, flush=True)
