"""Finding the cpuset hierarchy and mapping cgroup paths, from mountinfo text."""

from kcm.cgroups import Hierarchy, find_hierarchy, parse_mountinfo

V1 = ("34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset\n"
      "35 31 0:32 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n")


def test_v1_cpuset_is_preferred_and_paths_map_into_the_mount():
    hierarchy = find_hierarchy(V1)
    assert (hierarchy.version, hierarchy.mount) == (1, "/sys/fs/cgroup/cpuset")
    assert hierarchy.fs_path("/kubepods/pod1/c1") == "/sys/fs/cgroup/cpuset/kubepods/pod1/c1"


def test_v2_when_cpuset_is_a_v2_controller(tmp_path):
    (tmp_path / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    mounted = str(tmp_path).replace(" ", "\\040")
    hierarchy = find_hierarchy(f"35 31 0:32 / {mounted} rw - cgroup2 cgroup2 rw\n")
    assert (hierarchy.version, hierarchy.mount) == (2, str(tmp_path))
    assert hierarchy.effective_file == "cpuset.cpus.effective"


def test_a_container_sees_a_sub_tree_mounted_at_its_root():
    """In a pod, /sys/fs/cgroup may show only a sub-tree: paths outside it map to None."""
    hierarchy = Hierarchy(2, "/host/cgroup", "/kubepods.slice")
    assert hierarchy.fs_path("/kubepods.slice/pod/c") == "/host/cgroup/pod/c"
    assert hierarchy.fs_path("/system.slice/sshd.service") is None


def test_escaped_mount_points():
    (fstype, point, root, options), = parse_mountinfo(
        "1 0 0:1 / /a\\040b rw - cgroup cgroup rw,cpuset\n")
    assert (fstype, point, root, options) == ("cgroup", "/a b", "/", "rw,cpuset")
