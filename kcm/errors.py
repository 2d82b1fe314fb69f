"""The one error family of kcm: every foreseeable failure is a KcmError.

The CLI turns any of them into one ``kcm: ...`` line on stderr and an exit code.
"""


class KcmError(Exception):
    """A failure kcm reports to its user; the message names what and where."""

    exit_code = 1


class CpuListError(KcmError):
    """Text that is not a valid Linux CPU list."""


class TopologyError(KcmError):
    """The machine's topology could not be read from sysfs."""


class ConfigError(KcmError):
    """The configuration directory is missing, malformed or not ours."""


class ConfigMissing(ConfigError):
    """There is no configuration directory (or no pools in it): kcm init makes one."""


class LockTimeout(KcmError):
    """The configuration directory's lock was not obtained in time."""


class AllocationError(KcmError):
    """No CPUs satisfy a request: too few, pool full, unknown pool."""


class InputError(KcmError):
    """A number, name or path given to kcm (flag, environment, file) is out of bounds."""


class ProcessError(KcmError):
    """A process could not be inspected or started."""


def one_line(message: str) -> str:
    """An error message as one line: control characters (a newline in a path) escaped."""
    if message.isprintable():
        return message
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in message)
