"""``kcm enforce``: make exclusive CPUs exclusive for everything on the node: container
cpusets under the kubelet's cgroups and, with ``--steer-irqs``, interrupts. Once, or
every N seconds and within milliseconds of a grant or release (inotify)."""

from kcm import jsontext
from kcm.enforcer import make_enforcer
from kcm.output import emit
from kcm.periodic import repeat
from kcm.state import ConfigDir, conf_dir_from


def run(args) -> int:
    conf = ConfigDir(conf_dir_from(args.conf_dir))
    enforcer = make_enforcer(conf, args.cgroup_root, args.steer_irqs)
    if args.interval is None:
        emit(enforcer.one_pass(), args.output)
        return 0
    from kcm.watch import Watcher

    watcher = Watcher()

    def one_pass() -> None:
        watcher.watch(conf.cpu_list_directories())
        print(jsontext.dumps(enforcer.one_pass()), flush=True)

    return repeat(args.interval, one_pass, "enforce pass", woken=watcher.wait)
