"""What ``kcm --help`` and ``kcm COMMAND --help`` print: generated from kcm's argument
parser (80 columns) by scripts/gen-cli-doc.py, which a test runs to check it is
current. Printed as it is, without importing or building argparse (start-up cost)."""

HELP = {
    "": """\
usage: kcm [-h] [--version] COMMAND ...

kcm: a CPU manager for Kubernetes nodes.

positional arguments:
  COMMAND
    init        create the configuration directory with pools for this node
    discover    advertise exclusive pools as node extended resources
    describe    show pools, CPU lists and tasks
    reconcile   free CPU lists held by dead processes
    isolate     run a command pinned to CPUs taken from a pool
    enforce     keep other containers and interrupts off held exclusive CPUs
    install     put a self-contained kcm binary on the host
    node-report
                report the node's topology, pools and checks
    cluster-init
                set up kcm on cluster nodes in one command
    uninstall   remove what kcm added to the node
    webhook     serve the mutating admission webhook
    manifests   print the Kubernetes manifests for kcm
    doctor      check this node and say how to fix what is wrong

options:
  -h, --help    show this help message and exit
  --version     show program's version number and exit

environment:
  KCM_CONF_DIR: default for --conf-dir (/etc/kcm)
  KCM_PROC_FS: the host's procfs (/proc; in a container e.g. /host/proc);
      commands that judge whether a task lives refuse a procfs that is not
      the host's
  KCM_SYSFS: sysfs root for topology discovery (/sys)
  KCM_CGROUP_ROOT: default for --cgroup-root of enforce, node-report and
      doctor (the kubelet's kubepods.slice or kubepods)
  KCM_KUBELET_STATE: default for doctor --kubelet-state
      (/var/lib/kubelet/cpu_manager_state)
  KCM_LOCK_TIMEOUT: seconds to wait for the configuration lock (30; 0 = do
      not wait; at most a week)
  KCM_NUM_CORES: default for isolate --num-cores (1)
  KCM_LOG_LEVEL: DEBUG, INFO, WARNING, ERROR (INFO)
  KCM_RECONCILE_SLEEP_TIME: default for reconcile --interval (unset: run
      once)
  KCM_STOP_GRACE: seconds kcm isolate gives what is left of a workload, once
      its main process has exited, between SIGTERM and SIGKILL (10; 0 =
      SIGKILL at once)
  KCM_API_RETRY_SECONDS: how long Kubernetes calls retry a failing API
      server (30)
  KCM_BUNDLE_DIR: the bundle kcm install copies (see kcm install --help)
  KCM_SERVICE_ACCOUNT_DIR: the in-cluster service account files
      (/var/run/secrets/kubernetes.io/serviceaccount)

Options go after the command's name (kcm isolate --pool=P -- CMD); for isolate,
everything from CMD on belongs to CMD.
""",
    "init": """\
usage: kcm init [-h] [--conf-dir DIR] [--exclusive-pool-name NAME]
                [--shared-pool-name NAME] [--num-dp-cores N]
                [--num-cp-cores N] [--dp-mode {packed,spread}]
                [--cp-mode {packed,spread}] [--layout {flat,sockets}]

create the configuration directory with pools for this node

options:
  -h, --help            show this help message and exit
  --conf-dir DIR        configuration directory (default $KCM_CONF_DIR or
                        /etc/kcm)
  --exclusive-pool-name NAME
                        name of the exclusive pool (default dataplane; the cmk
                        command names it exclusive, as CMK did)
  --shared-pool-name NAME
                        name of the shared pool (default controlplane; shared
                        for cmk)
  --num-dp-cores N      physical cores in the exclusive dataplane pool
                        (default 4)
  --num-cp-cores N      physical cores in the shared controlplane pool
                        (default 1)
  --dp-mode {packed,spread}
                        packed: as few NUMA nodes as possible; spread: across
                        NUMA nodes (default packed)
  --cp-mode {packed,spread}
                        as --dp-mode, for the controlplane pool (default
                        packed)
  --layout {flat,sockets}
                        flat: pools/<pool>/<cpulist> (the original KCM's);
                        sockets: pools/<pool>/<socket>/<cpulist>, CMK
                        v1.4.1's, with a shared list split per socket (default
                        flat; sockets for cmk init)
""",
    "discover": """\
usage: kcm discover [-h] [--conf-dir DIR] [--node-name NAME]
                    [--resource-prefix DOMAIN] [--taint]
                    [-o {table,json,yaml}]

advertise exclusive pools as node extended resources

options:
  -h, --help            show this help message and exit
  --conf-dir DIR        configuration directory (default $KCM_CONF_DIR or
                        /etc/kcm)
  --node-name NAME      this node's name in the cluster (default $NODE_NAME)
  --resource-prefix DOMAIN
                        domain of the extended resources (default kcm.dev)
  --taint               also taint the node kcm.dev/node=true:NoSchedule
  -o {table,json,yaml}, --output {table,json,yaml}
                        output format (default: table on a terminal, json
                        otherwise)
""",
    "describe": """\
usage: kcm describe [-h] [--conf-dir DIR] [-o {table,json,yaml}]

show pools, CPU lists and tasks

options:
  -h, --help            show this help message and exit
  --conf-dir DIR        configuration directory (default $KCM_CONF_DIR or
                        /etc/kcm)
  -o {table,json,yaml}, --output {table,json,yaml}
                        json: the original KCM's document (with deadTasks when
                        a kcm process is gone); yaml: the same; table: for
                        people (default json)
""",
    "reconcile": """\
usage: kcm reconcile [-h] [--conf-dir DIR] [--interval SECONDS]
                     [-o {table,json,yaml}]

free CPU lists held by dead processes

options:
  -h, --help            show this help message and exit
  --conf-dir DIR        configuration directory (default $KCM_CONF_DIR or
                        /etc/kcm)
  --interval SECONDS    repeat every SECONDS until SIGTERM, one JSON line per
                        pass (default $KCM_RECONCILE_SLEEP_TIME, else run
                        once)
  -o {table,json,yaml}, --output {table,json,yaml}
                        output format (default: table on a terminal, json
                        otherwise)
""",
    "isolate": """\
usage: kcm isolate [-h] [--conf-dir DIR] --pool POOL [--num-cores N]
                   [--socket-id N | --numa-node N] [--no-affinity]
                   [--with-shared]
                   ...

run a command pinned to CPUs taken from a pool

positional arguments:
  COMMAND [ARGS...]  the command to run, without a shell. kcm's options come
                     before it: everything from COMMAND on (or after --) is
                     the command's, so `kcm isolate --pool=p sleep 1 --num-
                     cores=2` passes --num-cores=2 to sleep

options:
  -h, --help         show this help message and exit
  --conf-dir DIR     configuration directory (default $KCM_CONF_DIR or
                     /etc/kcm)
  --pool POOL        pool to take CPUs from
  --num-cores N      CPU lists to take from an exclusive pool (default
                     $KCM_NUM_CORES, else 1)
  --socket-id N      only CPUs of this socket
  --numa-node N      only CPUs of this NUMA node
  --no-affinity      do not pin; only set KCM_CPUS_ASSIGNED for the command
  --with-shared      pin to the granted CPUs plus every shared pool's, for a
                     workload that pins its own threads (poll loops on
                     KCM_CPUS_ASSIGNED, control threads on KCM_CPUS_SHARED);
                     default: the granted CPUs only
""",
    "enforce": """\
usage: kcm enforce [-h] [--conf-dir DIR] [--cgroup-root DIR]
                   [--interval SECONDS] [--steer-irqs] [-o {json,yaml}]

keep other containers and interrupts off held exclusive CPUs

options:
  -h, --help            show this help message and exit
  --conf-dir DIR        configuration directory (default $KCM_CONF_DIR or
                        /etc/kcm)
  --cgroup-root DIR     the cgroup directory whose leaf cgroups are the
                        containers (default $KCM_CGROUP_ROOT, else the
                        kubelet's kubepods.slice or kubepods under the cpuset
                        hierarchy, found in /proc/self/mountinfo)
  --interval SECONDS    repeat every SECONDS until SIGTERM, and at once when a
                        CPU list is taken or given back (default: run once)
  --steer-irqs          also move interrupts off held exclusive CPUs, and back
                        on release (default: leave interrupts alone)
  -o {json,yaml}, --output {json,yaml}
                        output format (default: json)
""",
    "install": """\
usage: kcm install [-h] [--install-dir DIR] [--from DIR]
                   [-o {table,json,yaml}]

put a self-contained kcm binary on the host

options:
  -h, --help            show this help message and exit
  --install-dir DIR     where the self-contained kcm binary lives (default
                        /opt/bin)
  --from DIR            the kcm bundle to install (default $KCM_BUNDLE_DIR,
                        this binary's own bundle, or
                        /usr/local/share/kcm/bundle; when none exists, one is
                        built from the running Python)
  -o {table,json,yaml}, --output {table,json,yaml}
                        output format (default: table on a terminal, json
                        otherwise)
""",
    "node-report": """\
usage: kcm node-report [-h] [--conf-dir DIR] [--node-name NAME] [--publish]
                       [--node-resource-topology] [--resource-prefix DOMAIN]
                       [--interval SECONDS] [--metrics-port PORT]
                       [--metrics-address ADDRESS] [--cgroup-root DIR]
                       [-o {json,yaml}]

report the node's topology, pools and checks

options:
  -h, --help            show this help message and exit
  --conf-dir DIR        configuration directory (default $KCM_CONF_DIR or
                        /etc/kcm)
  --node-name NAME      this node's name in the cluster (default $NODE_NAME)
  --publish             create or update the node's NodeReport custom resource
  --node-resource-topology
                        with --publish, also publish the node's
                        NodeResourceTopology (per-NUMA zones of the pool
                        resources)
  --resource-prefix DOMAIN
                        domain of the extended resources (default kcm.dev)
  --interval SECONDS    repeat every SECONDS until SIGTERM
  --metrics-port PORT   serve Prometheus metrics on /metrics at this port
  --metrics-address ADDRESS
                        address for the metrics server (default: all)
  --cgroup-root DIR     the cgroup directory whose leaf cgroups are the
                        containers (default $KCM_CGROUP_ROOT, else the
                        kubelet's kubepods.slice or kubepods under the cpuset
                        hierarchy, found in /proc/self/mountinfo)
  -o {json,yaml}, --output {json,yaml}
                        output format (default: json)
""",
    "cluster-init": """\
usage: kcm cluster-init [-h] (--host-list NODE,NODE | --all-hosts)
                        [--namespace NAMESPACE] [--image IMAGE]
                        [--conf-dir DIR] [--install-dir DIR]
                        [--num-dp-cores N] [--num-cp-cores N]
                        [--dp-mode {packed,spread}]
                        [--cp-mode {packed,spread}]
                        [--reconcile-interval SECONDS]
                        [--report-interval SECONDS]
                        [--node-selector LABEL=VALUE]
                        [--resource-prefix DOMAIN] [--taint] [--no-webhook]
                        [--node-resource-topology] [--webhook-cert-dir DIR]
                        [--dry-run] [--timeout SECONDS]

set up kcm on cluster nodes in one command

options:
  -h, --help            show this help message and exit
  --host-list NODE,NODE
                        the nodes to set up
  --all-hosts           set up every node
  --namespace NAMESPACE
                        namespace of kcm's objects (default kcm-system)
  --image IMAGE         kcm container image (default ghcr.io/kcm-
                        project/kcm:0.2.0)
  --conf-dir DIR        configuration directory on the hosts (default
                        /etc/kcm)
  --install-dir DIR     where the self-contained kcm binary lives (default
                        /opt/bin)
  --num-dp-cores N      physical cores in each node's exclusive dataplane pool
                        (kcm init on the nodes; default 4)
  --num-cp-cores N      physical cores in each node's shared controlplane pool
                        (default 1)
  --dp-mode {packed,spread}
                        dataplane placement, as kcm init's (default packed)
  --cp-mode {packed,spread}
                        controlplane placement, as kcm init's (default packed)
  --reconcile-interval SECONDS
                        seconds between reconcile (and enforce) passes on the
                        nodes (default 30)
  --report-interval SECONDS
                        seconds between node reports (default 60)
  --node-selector LABEL=VALUE
                        nodes that run kcm (default kcm.dev/enabled=true)
  --resource-prefix DOMAIN
                        domain of the extended resources (default kcm.dev)
  --taint               taint kcm nodes kcm.dev/node=true:NoSchedule
  --no-webhook          leave out the admission webhook
  --node-resource-topology
                        publish each node's NodeResourceTopology for the
                        topology-aware scheduler (adds its CRD unless the
                        cluster has one, and the role to write it)
  --webhook-cert-dir DIR
                        keep the webhook's CA and certificate here and reuse
                        them (default: mint new ones)
  --dry-run             print what would be applied and change nothing
  --timeout SECONDS     how long to wait for the nodes (default 600)
""",
    "uninstall": """\
usage: kcm uninstall [-h] [--conf-dir DIR] [--install-dir DIR]
                     [--node-name NAME] [--resource-prefix DOMAIN] [--force]
                     [-o {table,json,yaml}]

remove what kcm added to the node

options:
  -h, --help            show this help message and exit
  --conf-dir DIR        configuration directory (default $KCM_CONF_DIR or
                        /etc/kcm)
  --install-dir DIR     where the self-contained kcm binary lives (default
                        /opt/bin)
  --node-name NAME      this node's name in the cluster (default $NODE_NAME)
  --resource-prefix DOMAIN
                        domain of the extended resources (default kcm.dev)
  --force               uninstall even while kcm tasks are running
  -o {table,json,yaml}, --output {table,json,yaml}
                        output format (default: table on a terminal, json
                        otherwise)
""",
    "webhook": """\
usage: kcm webhook [-h] --tls-cert-file FILE --tls-private-key-file FILE
                   [--secure-port PORT] [--bind-address ADDRESS]
                   [--conf-dir DIR] [--install-dir DIR]
                   [--resource-prefix DOMAIN]

serve the mutating admission webhook

options:
  -h, --help            show this help message and exit
  --tls-cert-file FILE  PEM certificate the webhook serves (required)
  --tls-private-key-file FILE
                        PEM private key of that certificate (required)
  --secure-port PORT    HTTPS port (default 8443)
  --bind-address ADDRESS
                        address to listen on (default 0.0.0.0: all)
  --conf-dir DIR        configuration directory on the hosts, mounted into
                        workloads (default /etc/kcm)
  --install-dir DIR     where the self-contained kcm binary lives (default
                        /opt/bin)
  --resource-prefix DOMAIN
                        domain of the extended resources (default kcm.dev)
""",
    "manifests": """\
usage: kcm manifests [-h] [--namespace NAMESPACE] [--image IMAGE]
                     [--conf-dir DIR] [--install-dir DIR] [--num-dp-cores N]
                     [--num-cp-cores N] [--dp-mode {packed,spread}]
                     [--cp-mode {packed,spread}]
                     [--reconcile-interval SECONDS]
                     [--report-interval SECONDS] [--node-selector LABEL=VALUE]
                     [--resource-prefix DOMAIN] [--taint] [--no-webhook]
                     [--node-resource-topology] [--webhook-cert-dir DIR]
                     [--only {init-pod,discover-pod,reconcile}]

print the Kubernetes manifests for kcm

options:
  -h, --help            show this help message and exit
  --namespace NAMESPACE
                        namespace of kcm's objects (default kcm-system)
  --image IMAGE         kcm container image (default ghcr.io/kcm-
                        project/kcm:0.2.0)
  --conf-dir DIR        configuration directory on the hosts (default
                        /etc/kcm)
  --install-dir DIR     where the self-contained kcm binary lives (default
                        /opt/bin)
  --num-dp-cores N      physical cores in each node's exclusive dataplane pool
                        (kcm init on the nodes; default 4)
  --num-cp-cores N      physical cores in each node's shared controlplane pool
                        (default 1)
  --dp-mode {packed,spread}
                        dataplane placement, as kcm init's (default packed)
  --cp-mode {packed,spread}
                        controlplane placement, as kcm init's (default packed)
  --reconcile-interval SECONDS
                        seconds between reconcile (and enforce) passes on the
                        nodes (default 30)
  --report-interval SECONDS
                        seconds between node reports (default 60)
  --node-selector LABEL=VALUE
                        nodes that run kcm (default kcm.dev/enabled=true)
  --resource-prefix DOMAIN
                        domain of the extended resources (default kcm.dev)
  --taint               taint kcm nodes kcm.dev/node=true:NoSchedule
  --no-webhook          leave out the admission webhook
  --node-resource-topology
                        publish each node's NodeResourceTopology for the
                        topology-aware scheduler (adds its CRD unless the
                        cluster has one, and the role to write it)
  --webhook-cert-dir DIR
                        keep the webhook's CA and certificate here and reuse
                        them (default: mint new ones)
  --only {init-pod,discover-pod,reconcile}
                        only the operator manual's Pod template for one step
""",
    "doctor": """\
usage: kcm doctor [-h] [--conf-dir DIR] [--node-name NAME] [--install-dir DIR]
                  [--resource-prefix DOMAIN] [-o {table,json,yaml,text}]
                  [--kubelet-state FILE] [--cgroup-root DIR]
                  [--report-max-age SECONDS]

check this node and say how to fix what is wrong

options:
  -h, --help            show this help message and exit
  --conf-dir DIR        configuration directory (default $KCM_CONF_DIR or
                        /etc/kcm)
  --node-name NAME      this node's name in the cluster (default $NODE_NAME)
  --install-dir DIR     where the self-contained kcm binary lives (default
                        /opt/bin)
  --resource-prefix DOMAIN
                        domain of the extended resources (default kcm.dev)
  -o {table,json,yaml,text}, --output {table,json,yaml,text}
                        table (or text): findings and fixes for people; json,
                        yaml: for tools (default table)
  --kubelet-state FILE  the kubelet's CPU manager checkpoint (default
                        $KCM_KUBELET_STATE, else
                        /var/lib/kubelet/cpu_manager_state)
  --cgroup-root DIR     the cgroup directory whose leaf cgroups are the
                        containers (default $KCM_CGROUP_ROOT, else the
                        kubelet's kubepods.slice or kubepods under the cpuset
                        hierarchy, found in /proc/self/mountinfo)
  --report-max-age SECONDS
                        how old the NodeReport may be (default 600)
""",
}
