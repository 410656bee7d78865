"""Seeds a registry for the GC benchmark: `blobs` blobs of 1 KiB, half of them referenced by
manifests of 100 layers (tagged, in library/gc), half pushed and never referenced; the same
bytes whatever the server, so that Berth and Distribution collect the same content.

    gc_seed.py BASE BLOBS [CREDS]     prints the manifests pushed

Also `gc_seed.py push-load BASE SECONDS [CREDS]`: pushes small images from 4 connections for
SECONDS and prints the images pushed per second (the push throughput beside a collection)."""

import hashlib
import sys
import threading
import time

from registry import Registry

THREADS = 8
LAYERS_PER_MANIFEST = 100


def blob(i: int) -> bytes:
    seed = hashlib.sha256(f"gc bench blob {i}".encode()).digest()
    return (seed * 32)[:1024]


def seed(base: str, blobs: int, creds: str | None) -> int:
    referenced = blobs // 2
    manifests = referenced // LAYERS_PER_MANIFEST
    config = b'{"architecture":"amd64","os":"linux"}'
    config_digest = "sha256:" + hashlib.sha256(config).hexdigest()
    failures = []

    def work(t: int) -> None:
        try:
            r = Registry(base, creds)
            r.push_blob("library/gc", config)
            # Unreferenced blobs: every THREADS-th from `referenced` on.
            for i in range(referenced + t, blobs, THREADS):
                r.push_blob("library/gc", blob(i))
            # Referenced: whole manifests, every THREADS-th.
            for m in range(t, manifests, THREADS):
                layers = []
                for i in range(m * LAYERS_PER_MANIFEST, (m + 1) * LAYERS_PER_MANIFEST):
                    layers.append((r.push_blob("library/gc", blob(i)), 1024))
                r.push_manifest("library/gc", f"m{m}", (config_digest, len(config)), layers)
        except BaseException as e:  # noqa: BLE001 - reported below
            failures.append(e)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(THREADS)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    if failures:
        sys.exit(f"seeding failed: {failures[0]!r}")
    return manifests


def push_load(base: str, seconds: float, creds: str | None) -> float:
    pushed = [0]
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def work(t: int) -> None:
        r = Registry(base, creds)
        config = b'{"architecture":"amd64","os":"linux"}'
        c = (r.push_blob("library/load", config), len(config))
        n = 0
        while time.monotonic() < deadline:
            layer = hashlib.sha256(f"load {t} {n} {time.time_ns()}".encode()).digest() * 64
            d = r.push_blob("library/load", layer)
            r.push_manifest("library/load", f"t{t}-{n % 50}", c, [(d, len(layer))])
            n += 1
        with lock:
            pushed[0] += n

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    start = time.monotonic()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return pushed[0] / (time.monotonic() - start)


if __name__ == "__main__":
    if sys.argv[1] == "push-load":
        print(round(push_load(sys.argv[2], float(sys.argv[3]), sys.argv[4] if len(sys.argv) > 4 else None), 1))
    else:
        print(seed(sys.argv[1], int(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3 else None))
