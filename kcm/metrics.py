"""Prometheus metrics of the node report (``kcm node-report --metrics-port``), served
on ``GET /metrics`` by kcm's guarded server (bounded connections and deadlines)."""

import threading

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, Histogram
from prometheus_client.exposition import generate_latest

from kcm.serving import GuardedHandler, GuardedHTTPServer


class NodeMetrics:
    def __init__(self, port: int, address: str = ""):
        self.registry = CollectorRegistry()
        labels = ["pool"]
        self.cpu_lists = Gauge("kcm_pool_cpu_lists", "CPU lists in the pool", labels,
                               registry=self.registry)
        self.in_use = Gauge("kcm_pool_cpu_lists_in_use", "CPU lists with at least one task",
                            labels, registry=self.registry)
        self.tasks = Gauge("kcm_pool_tasks", "Tasks recorded in the pool", labels,
                           registry=self.registry)
        self.dead = Gauge("kcm_pool_dead_tasks",
                          "Recorded tasks whose process is gone (reclaim pending)", labels,
                          registry=self.registry)
        self.check_failures = Gauge("kcm_check_failures", "Problems found by a node check",
                                    ["check"], registry=self.registry)
        self.not_confined = Gauge("kcm_enforce_containers_not_confined",
                                  "Containers that may still run on CPUs another task holds",
                                  registry=self.registry)
        self.violations = Gauge("kcm_enforce_violations",
                                "Threads in containers allowed on another task's exclusive CPUs",
                                registry=self.registry)
        self.irqs_steered = Gauge("kcm_irqs_steered", "IRQs kcm moved off held exclusive CPUs",
                                  registry=self.registry)
        self.irqs_on_held = Gauge("kcm_irqs_on_held_cpus",
                                  "IRQs whose affinity still includes held exclusive CPUs",
                                  registry=self.registry)
        self.lock_wait = Histogram("kcm_lock_wait_seconds",
                                   "Time waited for the configuration directory lock",
                                   registry=self.registry,
                                   buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30))
        self.server = _MetricsServer((address, port), self.registry)
        self.thread = threading.Thread(target=self.server.serve_forever, name="metrics",
                                       daemon=True)
        self.thread.start()

    def update(self, report: dict, lock_wait: float) -> None:
        self.lock_wait.observe(lock_wait)
        enforcement = report.get("enforcement") or {}
        if enforcement.get("available"):
            self.not_confined.set(len(enforcement["containersNotConfined"]))
            self.violations.set(len(enforcement["violations"]))
            self.irqs_steered.set(len(enforcement["irqsSteered"]))
            self.irqs_on_held.set(len(enforcement["irqsOnHeldCpus"]))
        for check in report["checks"]:
            self.check_failures.labels(check["name"]).set(len(check["errors"]))
        for name, pool in report["pools"].items():
            lists = pool["cpuLists"].values()
            tasks = [task for cpu_list in lists for task in cpu_list["tasks"]]
            self.cpu_lists.labels(name).set(len(lists))
            self.in_use.labels(name).set(sum(1 for cpu_list in lists if cpu_list["tasks"]))
            self.tasks.labels(name).set(len(tasks))
            self.dead.labels(name).set(sum(1 for task in tasks if not task["alive"]))

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class _MetricsServer(GuardedHTTPServer):
    def __init__(self, address: tuple[str, int], registry: CollectorRegistry):
        self.registry = registry
        super().__init__(address, _MetricsHandler)


class _MetricsHandler(GuardedHandler):
    server: _MetricsServer

    def do_GET(self) -> None:
        if self.path.split("?", 1)[0] in ("/metrics", "/"):
            self.reply(200, generate_latest(self.server.registry), CONTENT_TYPE_LATEST)
        else:
            self.reply(404, b"only /metrics\n", "text/plain")
