"""``kcm install``: the self-contained bundle on the host, run where there is no Python."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kcm import __version__
from kcm.install import DEFAULT_BUNDLE
from tests.conftest import KCM, private_host
from tests.integration.workloads import fake_bundle, make_conf, on_a_terminal

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def built(tmp_path_factory) -> tuple[Path, str, str]:
    """``kcm install`` on a machine with no bundle anywhere, as after ``pip install``: it
    builds one from the running Python, with progress on the terminal. Once per session;
    (install directory, what the terminal showed, the JSON it printed)."""
    if os.path.lexists(DEFAULT_BUNDLE):
        pytest.skip(f"{DEFAULT_BUNDLE} exists: kcm install would use it")
    target = tmp_path_factory.mktemp("built") / "opt-bin"
    env = private_host({k: v for k, v in os.environ.items() if k != "KCM_BUNDLE_DIR"},
                       target.parent)
    shown, printed = on_a_terminal([KCM, "install", f"--install-dir={target}", "-o", "json"],
                                   env, "stderr", timeout=600)
    return target, shown, printed


@pytest.fixture(scope="session")
def bundle(built) -> Path:
    """The bundle that build made (its installed directory)."""
    target, _, _ = built
    return (target / "kcm").resolve().parent


def test_install_builds_the_bundle_when_there_is_none(built):
    target, shown, printed = built
    result = json.loads(printed)
    assert result["changed"] is True and result["from"].startswith("built from /")
    assert "kcm: building the kcm bundle: 6 of 6 steps" in shown
    assert not [p for p in target.iterdir() if p.name.startswith(".kcm-tmp-")]
    runtime = (target / "kcm").resolve().parent / "runtime"
    # Trimmed to what kcm imports: no test suite, GUI or unittest in the standard library.
    stdlib = next((runtime / "lib").glob("python3.*"))
    assert not {"test", "tkinter", "unittest", "idlelib"} & {p.name for p in stdlib.iterdir()}
    # It runs with nothing from the environment, as the launcher in a bare container.
    version = subprocess.run([str(target / "kcm"), "--version"], env={}, capture_output=True,
                             text=True, check=True)
    assert version.stdout == f"kcm {__version__}\n"
    imports = subprocess.run(
        [str(runtime / "lib/ld-linux-x86-64.so.2"), "--library-path", str(runtime / "lib"),
         str(runtime / "bin/python3"), "-I", "-S", "-c",
         "import kcm.k8s, kcm.webhook, kcm.metrics, kcm.certs, kcm.rollout, kcm.manifests, "
         "kcm.sysfs, kcm.allocate, yaml; from lightkube.resources.core_v1 import Node"],
        env={}, capture_output=True, text=True)
    assert imports.returncode == 0, imports.stderr


def test_the_bundle_opens_network_connections(built, tmp_path):
    """Every API command of the bundle (and of the image built from it) connects through
    a host name: the idna codec and its stringprep must be there. Against a port on
    127.0.0.1 where nothing listens, the error is the connection's, not a LookupError."""
    target, _, _ = built
    import socket

    with socket.socket() as probe:  # a free port, closed again: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        f"clusters: [{{name: c, cluster: {{server: 'https://localhost:{port}'}}}}]\n"
        "users: [{name: u, user: {token: t}}]\n"
        "contexts: [{name: c, context: {cluster: c, user: u}}]\n")
    conf = make_conf(tmp_path / "conf", {"dataplane": (True, ["0"])})
    codec = subprocess.run([str(target / "kcm"), "discover", f"--conf-dir={conf}",
                            "--node-name=n1"], capture_output=True, text=True, timeout=120,
                           env={"KUBECONFIG": str(kubeconfig), "KCM_API_RETRY_SECONDS": "0"})
    assert codec.returncode == 1, codec.stderr
    assert "idna" not in codec.stderr and "Traceback" not in codec.stderr
    assert codec.stderr.startswith("kcm: ") and "cannot reach the API server" in codec.stderr


def test_uninstall_run_from_the_installed_bundle_removes_it_last(built, tmp_path):
    """/opt/bin/kcm uninstall removes the very bundle it runs from: it used to import a
    module from it afterwards (ModuleNotFoundError, exit 1, /etc/kcm left behind)."""
    target, _, _ = built
    bundle = (target / "kcm").resolve().parent
    install = tmp_path / "opt-bin"
    subprocess.run([str(target / "kcm"), "install", f"--install-dir={install}",
                    f"--from={bundle}"], env={}, check=True, capture_output=True)
    conf = make_conf(tmp_path / "conf", {"dataplane": (True, ["0"])})
    result = subprocess.run([str(install / "kcm"), "uninstall", f"--conf-dir={conf}",
                             f"--install-dir={install}", "-o", "json"],
                            env={}, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    removed = json.loads(result.stdout)["removed"]
    assert str(conf) in removed and str(install / "kcm") in removed
    assert not conf.exists() and os.listdir(install) == []


KILLED_DURING_BUILD = r"""
import ctypes, os, signal, subprocess, sys, time
kcm, install_dir = sys.argv[1:]
PR_SET_CHILD_SUBREAPER = 36
if ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0):
    sys.exit("cannot become a subreaper")
install = subprocess.Popen([kcm, "install", f"--install-dir={install_dir}"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
stdlib = os.path.join(install_dir, f".kcm-tmp-{install.pid}", "runtime", "lib",
                      f"python{sys.version_info[0]}.{sys.version_info[1]}")
deadline = time.monotonic() + 300
while not os.path.exists(os.path.join(stdlib, "__pycache__")):  # compiling has begun
    if install.poll() is not None or time.monotonic() > deadline:
        sys.exit(f"kcm install ended ({install.poll()}) before compiling")
    time.sleep(0.005)
os.kill(install.pid, signal.SIGKILL)
install.wait()
deadline = time.monotonic() + 15
while True:  # what the killed install left behind is now this process's child
    try:
        pid, _ = os.waitpid(-1, os.WNOHANG)
    except ChildProcessError:
        print("nothing left")
        break
    if pid == 0 and time.monotonic() > deadline:
        with open(f"/proc/{os.getpid()}/task/{os.getpid()}/children") as handle:
            left = [int(word) for word in handle.read().split()]
        for pid in left:
            os.kill(pid, signal.SIGKILL)
        sys.exit(f"processes outlived kcm install: {left}")
    if pid == 0:
        time.sleep(0.01)
"""


def test_a_killed_install_leaves_no_process_behind(tmp_path):
    """kill -9 of ``kcm install`` while it compiles the bundle it builds: nothing it
    started keeps running (a pool of compile workers once did, forever)."""
    if os.path.lexists(DEFAULT_BUNDLE):
        pytest.skip(f"{DEFAULT_BUNDLE} exists: kcm install would use it")
    env = private_host({k: v for k, v in os.environ.items() if k != "KCM_BUNDLE_DIR"},
                       tmp_path)
    result = subprocess.run([sys.executable, "-c", KILLED_DURING_BUILD, KCM,
                             str(tmp_path / "opt-bin")], env=env, capture_output=True,
                            text=True, timeout=400)
    assert (result.returncode, result.stdout, result.stderr) == (0, "nothing left\n", "")


def test_install_is_atomic_idempotent_and_replaceable(kcm, bundle, tmp_path):
    target = tmp_path / "opt-bin"
    first = json.loads(kcm.run("install", f"--install-dir={target}", f"--from={bundle}",
                               check=True).stdout)
    link = target / "kcm"
    assert first["changed"] is True and first["installed"] == str(link)
    assert link.is_symlink() and not os.readlink(link).startswith("/")
    version = subprocess.run([str(link), "--version"], capture_output=True, text=True, check=True)
    assert version.stdout.startswith("kcm ")
    # kcm doctor finds the installed version in what kcm install laid out.
    report = json.loads(kcm.run("doctor", f"--install-dir={target}",
                                f"--conf-dir={tmp_path / 'none'}", "-o", "json").stdout)
    [check] = [c for c in report["checks"] if c["name"] == "installedBinary"]
    assert check["ok"] and check["detail"] == f"{link} is kcm {__version__}"
    # cmk, the same launcher under CMK's name, speaks CMK's command line.
    assert os.readlink(target / "cmk") == os.readlink(link)
    cmk = subprocess.run([str(target / "cmk"), "--version"], capture_output=True, text=True,
                         check=True)
    assert cmk.stdout == f"CMK v1.4.1 (kcm {__version__})\n"
    again = json.loads(kcm.run("install", f"--install-dir={target}", f"--from={bundle}",
                               check=True).stdout)
    assert again["changed"] is False
    # A different bundle replaces the old one in one rename; the old one is removed.
    other = tmp_path / "other"
    shutil.copytree(bundle, other, symlinks=True)
    (other / "marker").write_text("new")
    kcm.run("install", f"--install-dir={target}", f"--from={other}", check=True)
    bundles = [p.name for p in target.iterdir() if p.name.startswith(".kcm-")]
    assert len(bundles) == 1 and (target / bundles[0] / "marker").exists()
    assert not [p for p in target.iterdir() if p.name.startswith(".kcm-tmp-")]


def test_install_without_a_bundle_is_a_clear_error(kcm, tmp_path):
    result = kcm.run("install", f"--install-dir={tmp_path}", f"--from={tmp_path / 'none'}")
    assert result.returncode == 1
    assert result.stderr.startswith(f"kcm: no kcm bundle at {tmp_path / 'none'}")


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("busybox"),
                    reason="needs root (chroot, mount) and busybox")
def test_the_installed_binary_runs_in_a_root_filesystem_without_python_or_libc(
        kcm, bundle, tmp_path):
    rootfs = tmp_path / "rootfs"
    for directory in ("bin", "proc", "tmp", "etc", "opt/bin"):
        (rootfs / directory).mkdir(parents=True)
    shutil.copy2(shutil.which("busybox"), rootfs / "bin/busybox")  # static: no libc needed
    kcm.run("install", f"--install-dir={rootfs / 'opt/bin'}", f"--from={bundle}", check=True)
    make_conf(rootfs / "etc/kcm", {"dataplane": (True, ["1"]), "infra": (False, ["0"])})
    outside = [p for p in rootfs.rglob("*") if not str(p).startswith(str(rootfs / "opt/bin"))
               and p.is_file() and p.name not in ("busybox", "exclusive", "tasks")]
    assert outside == [], "the root file system has more than busybox and kcm's files"
    assert not (rootfs / "lib").exists() and not (rootfs / "usr").exists()
    script = (f"mount --bind /proc {rootfs}/proc && exec chroot {rootfs} /opt/bin/kcm isolate "
              "--conf-dir=/etc/kcm --pool=dataplane -- /bin/busybox grep Cpus_allowed_list "
              "/proc/self/status")
    result = subprocess.run(["unshare", "--mount", "--fork", "sh", "-c", script],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["Cpus_allowed_list:", "1"]
    assert (rootfs / "etc/kcm/pools/dataplane/1/tasks").read_text() == ""
    no_python = subprocess.run(["chroot", str(rootfs), "/bin/busybox", "which", "python3"],
                               capture_output=True)
    assert no_python.returncode != 0


def test_uninstall_removes_only_what_kcm_installed(kcm, tmp_path):
    """Files that merely look like kcm's stay: a plain ``kcm``, other ``.kcm-*`` entries."""
    target = tmp_path / "opt-bin"
    kcm.run("install", f"--install-dir={target}", f"--from={fake_bundle(tmp_path / 'b')}",
            check=True)
    foreign = [target / ".kcm-notes", target / ".kcm-1.0-0123456789ab"]
    foreign[0].write_text("mine")
    foreign[1].mkdir()
    (foreign[1] / "data").write_text("mine")
    conf = make_conf(tmp_path / "conf", {"infra": (False, ["0"])})
    result = kcm.run("uninstall", f"--conf-dir={conf}", f"--install-dir={target}", check=True)
    removed = json.loads(result.stdout)["removed"]
    assert {str(target / "kcm"), str(target / "cmk")} <= set(removed)
    assert len(removed) == 4  # kcm and cmk links, bundle, conf dir
    assert sorted(target.iterdir()) == sorted(foreign)
    # A plain file named kcm in the directory is not kcm's installation either.
    (target / "kcm").write_text("someone else's")
    kcm.run("uninstall", f"--conf-dir={conf}", f"--install-dir={target}", check=True)
    assert (target / "kcm").read_text() == "someone else's"
    # Nor is a symlink named kcm or cmk that points anywhere but into one of kcm's
    # bundles: to another program, into a bundle-like name that is no bundle, nowhere.
    (target / "kcm").unlink()
    os.symlink("/bin/true", target / "kcm")
    os.symlink(".kcm-1.0-0123456789ab/kcm", target / "cmk")
    kcm.run("uninstall", f"--conf-dir={conf}", f"--install-dir={target}", check=True)
    assert os.readlink(target / "kcm") == "/bin/true"
    assert os.readlink(target / "cmk") == ".kcm-1.0-0123456789ab/kcm"
    assert (foreign[1] / "data").read_text() == "mine"


def test_uninstall_refuses_an_empty_install_dir(kcm, tmp_path):
    (tmp_path / "kcm").write_text("not kcm's")
    conf = make_conf(tmp_path / "conf", {"infra": (False, ["0"])})
    result = kcm.run("uninstall", f"--conf-dir={conf}", "--install-dir=", cwd=tmp_path)
    assert (result.returncode, result.stderr) == (1, "kcm: --install-dir must not be empty\n")
    assert (tmp_path / "kcm").exists() and conf.exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to mount a read-only tmpfs")
def test_uninstall_on_a_read_only_directory_removes_nothing(kcm, tmp_path):
    target = tmp_path / "opt-bin"
    kcm.run("install", f"--install-dir={target}", f"--from={fake_bundle(tmp_path / 'b')}",
            check=True)
    conf = tmp_path / "conf"
    conf.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(conf)], check=True)
    try:
        make_conf(conf, {"infra": (False, ["0"])})
        subprocess.run(["mount", "-o", "remount,ro", str(conf)], check=True)
        result = kcm.run("uninstall", f"--conf-dir={conf}", f"--install-dir={target}")
        assert result.returncode == 1
        assert result.stderr == (f"kcm: cannot remove {conf}: the directory is not writable "
                                 "(read-only file system or no permission)\n")
        assert (target / "kcm").is_symlink() and (conf / "pools").is_dir()
    finally:
        subprocess.run(["umount", str(conf)], check=True)


def test_the_launcher_passes_arguments_and_environment_through(bundle, tmp_path):
    conf = make_conf(tmp_path / "kcm", {"infra": (False, ["0"])})
    odd = ["a b", "", "line\nbreak", "--pool=x", "é"]
    result = subprocess.run(
        [str(bundle / "kcm"), "isolate", f"--conf-dir={conf}", "--pool=infra", "--",
         "/bin/sh", "-c", 'printf "%s|" "$@"; printf "%s" "$WORKLOAD_VAR"', "sh", *odd],
        env={"WORKLOAD_VAR": "kept", "PATH": "/usr/bin:/bin"}, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "|".join(odd) + "|kept"
    lonely = tmp_path / "lonely"
    lonely.mkdir()
    shutil.copy2(bundle / "kcm", lonely / "kcm")
    missing = subprocess.run([str(lonely / "kcm"), "--version"], capture_output=True, text=True)
    assert missing.returncode == 127
    assert missing.stderr == "kcm: cannot run the bundle's runtime/lib/ld-linux-x86-64.so.2\n"
