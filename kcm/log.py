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


def info(message: str) -> None:
    log("INFO", message)


def debug(message: str) -> None:
    log("DEBUG", message)
