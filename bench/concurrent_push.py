"""Many clients each pushing one large blob at once, monolithically and streamed from one file
(each blob made distinct by a suffix of its own). Arguments: base URL, user:password,
repository prefix, file, clients. Prints the seconds from the first byte to the last answer."""

import hashlib
import multiprocessing
import os
import sys
import time

from registry import Registry


def stream(path: str, suffix: bytes):
    with open(path, "rb") as f:
        while data := f.read(1 << 20):
            yield data
    yield suffix


def client(args: tuple) -> None:
    base, creds, repo, path, n, barrier = args
    suffix = f"client {n}".encode()
    hasher = hashlib.sha256()
    with open(path, "rb") as f:
        while data := f.read(1 << 20):
            hasher.update(data)
    hasher.update(suffix)
    digest = "sha256:" + hasher.hexdigest()
    length = os.path.getsize(path) + len(suffix)
    registry = Registry(base, creds)
    barrier.wait()
    registry.push_blob(repo, stream(path, suffix), digest, length)


def main() -> None:
    base, creds, prefix, path = sys.argv[1:5]
    clients = int(sys.argv[5])
    manager = multiprocessing.Manager()
    barrier = manager.Barrier(clients + 1)
    jobs = [(base, creds, f"{prefix}-{n}", path, n, barrier) for n in range(clients)]
    with multiprocessing.Pool(clients) as pool:
        result = pool.map_async(client, jobs)
        barrier.wait()
        start = time.monotonic()
        result.get()
        print(f"{time.monotonic() - start:.3f}")


if __name__ == "__main__":
    main()
