"""Concurrent clients pushing images, then pulling them back. Each client is its own process with
its own keep-alive connection; every client's random layers are made before the clock starts.
Arguments: base URL (http://host:port), repository prefix (e.g. library/storm), user:password
or "-", clients, images per client, layers per image, layer size in KiB, seed.
Prints the seconds from the first push to the last pulled byte."""

import multiprocessing
import random
import sys
import time

from registry import Registry


def client(args: tuple) -> int:
    base, creds, repo, images, layers, layer_kib, seed, barrier = args
    rng = random.Random(seed)
    data = [[rng.randbytes(layer_kib << 10) for _ in range(layers)] for _ in range(images)]
    registry = Registry(base, creds)
    barrier.wait()
    for i, image in enumerate(data):
        config = f'{{"architecture":"amd64","os":"linux","created":"{seed}-{i}"}}'.encode()
        pushed = [(registry.push_blob(repo, layer), len(layer)) for layer in image]
        registry.push_manifest(repo, f"v{i}", (registry.push_blob(repo, config), len(config)), pushed)
    pulled = 0
    for i in range(images):
        pulled += registry.pull_image(repo, f"v{i}")
    return pulled


def main() -> None:
    base, prefix, creds = sys.argv[1], sys.argv[2], sys.argv[3]
    clients, images, layers, layer_kib, seed = (int(a) for a in sys.argv[4:9])
    creds = None if creds == "-" else creds
    manager = multiprocessing.Manager()
    barrier = manager.Barrier(clients + 1)
    jobs = [(base, creds, f"{prefix}-{c}", images, layers, layer_kib, seed * 1000 + c, barrier) for c in range(clients)]
    with multiprocessing.Pool(clients) as pool:
        result = pool.map_async(client, jobs)
        barrier.wait()
        start = time.monotonic()
        total = sum(result.get())
        elapsed = time.monotonic() - start
    expected = clients * images * layers * (layer_kib << 10)
    if total < expected:
        sys.exit(f"pulled {total} bytes, expected at least {expected}")
    print(f"{elapsed:.3f}")


if __name__ == "__main__":
    main()
