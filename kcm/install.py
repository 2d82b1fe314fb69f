"""Putting the self-contained kcm bundle on the host, atomically.

The bundle (``scripts/build-bundle.sh``) is a relocatable copy of Python with its own
dynamic loader and C library, the standard library, kcm and its dependencies, behind a
static launcher ``kcm``: it runs in containers that have no Python and any libc, and
starts as fast as kcm in a virtual environment (nothing is unpacked at start).

Layout under the install directory (``/opt/bin`` by default)::

    kcm                      symlink -> .kcm-<version>-<digest>/kcm
    cmk                      the same (the launcher passes on the name: CMK's command line)
    .kcm-<version>-<digest>/ the bundle: kcm (launcher) and runtime/

A new bundle is copied to a temporary name, renamed into place, and the ``kcm``
symlink replaced with one rename: a workload starting at any instant runs either the
old or the new kcm, never a half-copied one. Bundles no longer linked are removed
(running processes keep their files open). The symlink is relative, so the directory
works wherever it is mounted in a container.
"""

import os
import sys

from kcm import __version__, env, log
from kcm.durable import fsync_path
from kcm.errors import KcmError

# shutil (with re) and hashlib are imported where they are used: kcm doctor reads the
# install without them.

LINK = "kcm"
LINKS = ("kcm", "cmk")
"""The commands put in the install directory: kcm, and cmk (CMK's command line)."""
PREFIX = ".kcm-"
TMP = ".kcm-tmp-"
DEFAULT_BUNDLE = "/usr/local/share/kcm/bundle"


def bundle_source(explicit: str | None) -> str | None:
    """Where the bundle to install is: --from, $KCM_BUNDLE_DIR, the bundle this kcm runs
    from (``<bundle>/runtime/bin/python3``), or the container image's default; None when
    none of these exists (then ``build_into`` makes one from the running Python)."""
    own = os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(sys.executable))))
    if explicit:
        source = explicit
    elif env.bundle_dir():
        source = env.bundle_dir()
    elif os.path.isfile(os.path.join(own, "kcm")) and os.path.isdir(os.path.join(own, "runtime")):
        source = own
    elif os.path.lexists(DEFAULT_BUNDLE):
        source = DEFAULT_BUNDLE
    else:
        return None
    executable = os.path.join(source, "kcm")
    if not (os.path.isfile(executable) and os.access(executable, os.X_OK)):
        raise KcmError(f"no kcm bundle at {source} (expected an executable {executable}; "
                       "pass --from, or leave --from and $KCM_BUNDLE_DIR unset to build one "
                       "from this Python)")
    return source


def build_into(install_dir: str) -> str:
    """Build a bundle from the running Python in ``install_dir``'s staging name (the same
    file system, so ``install(..., built=True)`` renames it into place)."""
    import shutil

    from kcm.bundle import build

    try:
        os.makedirs(install_dir, exist_ok=True)
    except OSError as error:
        raise KcmError(f"cannot create {install_dir}: {error.strerror}") from None
    staging = os.path.join(install_dir, f"{TMP}{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        build(staging)
    except OSError as error:
        raise KcmError(f"cannot build the kcm bundle in {staging}: {error.strerror}: "
                       f"{error.filename}") from None
    return staging


def digest(directory: str) -> str:
    """A short content hash of a bundle, so re-installing the same one is a no-op."""
    import hashlib

    hasher = hashlib.sha256()
    progress = log.Progress("checking the bundle", tree_size(directory))
    for root, dirs, files in os.walk(directory):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(root, name)
            hasher.update(os.path.relpath(path, directory).encode() + b"\0")
            with open(path, "rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    hasher.update(block)
                    progress.advance(len(block))
    progress.finish()
    return hasher.hexdigest()[:12]


def install(source: str, install_dir: str, built: bool = False) -> tuple[str, bool]:
    """Install the bundle; (path of the kcm link, whether anything changed). ``built``:
    ``source`` is ``build_into``'s staging directory, renamed into place (or removed)."""
    import shutil

    try:
        os.makedirs(install_dir, exist_ok=True)
        target_name = f"{PREFIX}{__version__}-{digest(source)}"
        target = os.path.join(install_dir, target_name)
        link = os.path.join(install_dir, LINK)
        wanted = os.path.join(target_name, "kcm")
        current = all(os.path.islink(os.path.join(install_dir, name))
                      and os.readlink(os.path.join(install_dir, name)) == wanted
                      for name in LINKS)
        if current and os.path.isdir(target):
            if built:
                shutil.rmtree(source, ignore_errors=True)
            return link, False
        if built and os.path.isdir(target):
            shutil.rmtree(source, ignore_errors=True)
        elif built:
            _sync_tree(source)
            os.rename(source, target)
        elif not os.path.isdir(target):
            staging = os.path.join(install_dir, f"{TMP}{os.getpid()}")
            shutil.rmtree(staging, ignore_errors=True)
            copying = log.Progress("copying the bundle", tree_size(source))

            def copy(src: str, dst: str) -> None:
                shutil.copy2(src, dst)
                copying.advance(os.path.getsize(dst))

            shutil.copytree(source, staging, symlinks=True, copy_function=copy)
            copying.finish()
            _sync_tree(staging)
            os.rename(staging, target)
        temp_link = os.path.join(install_dir, f"{TMP}link-{os.getpid()}")
        for name in LINKS:
            path = os.path.join(install_dir, name)
            if os.path.isdir(path) and not os.path.islink(path):
                raise KcmError(f"{path} is a directory; refusing to replace it")
        for name in LINKS:
            if os.path.lexists(temp_link):
                os.unlink(temp_link)
            os.symlink(wanted, temp_link)
            os.rename(temp_link, os.path.join(install_dir, name))
        fsync_path(install_dir)
        _remove_other_bundles(install_dir, keep=target_name)
        return link, True
    except OSError as error:
        raise KcmError(f"cannot install kcm into {install_dir}: {error.strerror}: "
                       f"{error.filename}") from None


def installed_paths(install_dir: str) -> list[str]:
    """What kcm installed in ``install_dir`` and nothing else: the ``kcm`` symlink when it
    points into one of kcm's bundles, the bundles (``.kcm-<version>-<digest>/`` holding
    a ``kcm`` file and ``runtime/``), and kcm's own staging debris."""
    if not install_dir:
        raise KcmError("--install-dir must not be empty")
    try:
        names = os.listdir(install_dir)
    except FileNotFoundError:
        return []
    except OSError as error:
        raise KcmError(f"cannot read {install_dir}: {error.strerror}") from None
    found = [os.path.join(install_dir, name) for name in sorted(names)
             if _is_bundle(install_dir, name) or _is_staging(install_dir, name)]
    for name in reversed(LINKS):
        link = os.path.join(install_dir, name)
        bundle = _linked_bundle(link)
        if bundle is not None and _is_bundle(install_dir, bundle):
            found.insert(0, link)
    return found


def uninstall(install_dir: str) -> list[str]:
    """Remove what ``installed_paths`` finds; what was removed. Checked before anything
    goes: the directory must be writable, so a refusal leaves everything in place."""
    import shutil

    paths = installed_paths(install_dir)
    if paths and not os.access(install_dir, os.W_OK):
        raise KcmError(f"cannot remove kcm from {install_dir}: the directory is not writable")
    try:
        for path in paths:
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            else:
                os.unlink(path)
    except OSError as error:
        raise KcmError(f"cannot remove {error.filename or install_dir}: {error.strerror}") from None
    return paths


def _bundle_version(name: str) -> str | None:
    """The version in a bundle's name (``.kcm-<version>-<digest>``), None for any other."""
    version, _, digest = name[len(PREFIX):].rpartition("-")
    if (name.startswith(PREFIX) and not name.startswith(TMP) and version
            and len(digest) == 12 and all(c in "0123456789abcdef" for c in digest)):
        return version
    return None


def _linked_bundle(link: str) -> str | None:
    """The name of the bundle a link ``kcm install`` made points into (``<bundle>/kcm``),
    None for anything else at ``link``."""
    if not os.path.islink(link):
        return None
    name, _, rest = os.readlink(link).partition("/")
    return name if rest == "kcm" and _bundle_version(name) is not None else None


def _is_bundle(install_dir: str, name: str) -> bool:
    path = os.path.join(install_dir, name)
    return (_bundle_version(name) is not None
            and not os.path.islink(path) and os.path.isfile(os.path.join(path, "kcm"))
            and os.path.isdir(os.path.join(path, "runtime")))


ELF_MACHINES = {"x86_64": 62, "aarch64": 183, "ppc64le": 21, "ppc64": 21, "s390x": 22}
"""``e_machine`` of an ELF program for each ``uname -m`` kcm may run on."""


def linked_version(install_dir: str) -> str | None:
    """The version of the bundle ``install_dir/kcm`` links to, checked as far as it can
    be without running it (a Python start would cost ``kcm doctor`` twice its own
    checks): the bundle exists, its launcher is executable (an ELF program for this
    machine, or a script), so is its interpreter, and the file system allows executing.
    None when ``kcm`` there is not the link ``kcm install`` makes (only running it can
    tell); KcmError naming what is wrong."""
    link = os.path.join(install_dir, LINK)
    name = _linked_bundle(link)
    if name is None:
        return None
    version = _bundle_version(name)
    bundle = os.path.join(install_dir, name)
    if not os.path.isdir(bundle):
        raise KcmError(f"{link} points to {name}, which does not exist")
    launcher = os.path.join(bundle, "kcm")
    if os.statvfs(bundle).f_flag & os.ST_NOEXEC:
        raise KcmError(f"{launcher} is on a file system mounted noexec: it cannot run")
    for path in (launcher, os.path.join(bundle, "runtime", "bin", "python3")):
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            raise KcmError(f"{path} is missing or not executable")
    try:
        with open(launcher, "rb") as handle:
            header = handle.read(20)
    except OSError as error:
        raise KcmError(f"cannot read {launcher}: {error.strerror}") from None
    if header.startswith(b"#!"):
        return version  # a script (a bundle made by hand): its interpreter decides
    machine = os.uname().machine
    wanted = ELF_MACHINES.get(machine)
    order = "little" if header[5:6] == b"\x01" else "big"
    if header[:4] != b"\x7fELF" or len(header) < 20 or (
            wanted is not None and int.from_bytes(header[18:20], order) != wanted):
        raise KcmError(f"{launcher} is not a program for this machine ({machine})")
    return version


def _is_staging(install_dir: str, name: str) -> bool:
    """``.kcm-tmp-PID`` (a bundle being copied) or ``.kcm-tmp-link-PID`` (a new link)."""
    rest = name[len(TMP):]
    path = os.path.join(install_dir, name)
    if not name.startswith(TMP):
        return False
    if rest.startswith("link-") and rest[5:].isdigit():
        return os.path.islink(path) and os.readlink(path).startswith(PREFIX)
    return (rest.isdigit() and os.path.isdir(path) and not os.path.islink(path)
            and set(os.listdir(path)) <= {"kcm", "runtime"})


def _remove_other_bundles(install_dir: str, keep: str) -> None:
    import shutil

    for name in os.listdir(install_dir):
        if name.startswith(PREFIX) and name != keep:
            path = os.path.join(install_dir, name)
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                os.unlink(path)


def tree_size(directory: str) -> int:
    """Bytes in the regular files under ``directory`` (symlinks not followed)."""
    total = 0
    for root, _dirs, files in os.walk(directory):
        for name in files:
            path = os.path.join(root, name)
            if not os.path.islink(path):
                total += os.path.getsize(path)
    return total


def _sync_tree(directory: str) -> None:
    for root, _dirs, files in os.walk(directory):
        for name in files:
            path = os.path.join(root, name)
            if not os.path.islink(path):
                fsync_path(path)
        fsync_path(root)
