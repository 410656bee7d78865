"""Fills one repository with many artifacts, each tagged: one config and one layer shared, each
manifest made distinct by an annotation. Arguments: base URL, user:password, repository, count,
processes, and optionally a gzipped tar to be the layer (a real image's, for the scanner)."""

import multiprocessing
import sys

from registry import Registry


def seed(args: tuple) -> None:
    base, creds, repo, first, last, layer_file = args
    registry = Registry(base, creds)
    config = b'{"architecture":"amd64","os":"linux"}'
    layer_type = "application/vnd.oci.image.layer.v1.tar"
    layer = bytes(range(256)) * 16
    if layer_file:
        layer_type = "application/vnd.oci.image.layer.v1.tar+gzip"
        layer = open(layer_file, "rb").read()
    config_desc = (registry.push_blob(repo, config), len(config))
    layer_desc = (registry.push_blob(repo, layer), len(layer))
    for i in range(first, last):
        registry.push_manifest(repo, f"t{i}", config_desc, [layer_desc], {"org.example.n": str(i)}, layer_type)


def main() -> None:
    base, creds, repo = sys.argv[1:4]
    count, processes = int(sys.argv[4]), int(sys.argv[5])
    layer_file = sys.argv[6] if len(sys.argv) > 6 else None
    step = -(-count // processes)
    jobs = [(base, creds, repo, p * step, min(count, (p + 1) * step), layer_file) for p in range(processes)]
    with multiprocessing.Pool(processes) as pool:
        pool.map(seed, jobs)


if __name__ == "__main__":
    main()
