"""Webhook latency: hundreds of AdmissionReviews (kcm workload pods, and plain pods
that get no patch) from parallel keep-alive clients against ``kcm webhook`` over TLS
on 127.0.0.1; p50 and p99 per review, and reviews per second. Then the same with an
idle flood: 1,000 connections opened first that never send a byte (the server keeps
at most 256 and evicts the longest idle to make room); the reviews must still be
answered promptly, and the server's memory (RSS) stays bounded.
"""

import http.client
import json
import os
import socket
import ssl
import statistics
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from kcm.certs import mint

KCM = str(Path(os.sys.executable).with_name("kcm"))


def review(n: int) -> bytes:
    resources = {"limits": {"kcm.dev/dataplane-cores": "2"}} if n % 4 else {}
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"p{n}"},
           "spec": {"containers": [{"name": "app", "image": "app", "resources": resources}]}}
    return json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                       "request": {"uid": str(n), "kind": {"group": "", "version": "v1",
                                                           "kind": "Pod"},
                                   "operation": "CREATE", "object": pod}}).encode()


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as handle:
        line = next(line for line in handle if line.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


def run(clients: int = 8, per_client: int = 100) -> str:
    rows = [measure(clients, per_client, idle=0), measure(clients, per_client, idle=1000)]
    return ("| idle connections | reviews | clients | p50 ms | p99 ms | max ms | reviews/s "
            "| server RSS MB |\n|---|---|---|---|---|---|---|---|\n" + "\n".join(rows))


def measure(clients: int, per_client: int, idle: int) -> str:
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 4096)), hard))
    work = Path(tempfile.mkdtemp(prefix="kcm-bench-webhook-"))
    tls = mint(["127.0.0.1", "localhost"])
    for name, text in (("ca.crt", tls.ca), ("tls.crt", tls.cert), ("tls.key", tls.key)):
        (work / name).write_text(text)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen([KCM, "webhook", f"--tls-cert-file={work / 'tls.crt'}",
                             f"--tls-private-key-file={work / 'tls.key'}",
                             f"--secure-port={port}", "--bind-address=127.0.0.1"],
                            stderr=subprocess.DEVNULL)
    context = ssl.create_default_context(cafile=str(work / "ca.crt"))
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)

        flood = [socket.create_connection(("127.0.0.1", port), timeout=10)
                 for _ in range(idle)]

        def client(worker: int) -> list[float]:
            connection = http.client.HTTPSConnection("127.0.0.1", port, context=context)
            latencies = []
            for n in range(per_client):
                body = review(worker * per_client + n)
                started = time.perf_counter()
                connection.request("POST", "/mutate", body=body,
                                   headers={"Content-Type": "application/json"})
                answer = connection.getresponse()
                answer.read()
                latencies.append(time.perf_counter() - started)
                assert answer.status == 200
            return latencies

        started = time.perf_counter()
        with ThreadPoolExecutor(clients) as pool:
            latencies = sorted(x for batch in pool.map(client, range(clients)) for x in batch)
        elapsed = time.perf_counter() - started
        rss = rss_mb(proc.pid)
        for sock in flood:
            sock.close()
    finally:
        proc.terminate()
        proc.wait(10)
    p99 = latencies[int(len(latencies) * 0.99) - 1]
    return (f"| {idle} | {len(latencies)} | {clients} | "
            f"{statistics.median(latencies) * 1000:.2f} | {p99 * 1000:.2f} | "
            f"{latencies[-1] * 1000:.2f} | {len(latencies) / elapsed:.0f} | {rss:.0f} |")


if __name__ == "__main__":
    print(run())
