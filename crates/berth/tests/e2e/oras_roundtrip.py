"""Pushes an artifact of two files with the oras Python SDK, pulls it back, compares bytes.

Usage: oras_roundtrip.py HOST:PORT USER PASSWORD [PROJECT]
"""
import os
import sys
import tempfile

import oras.client


def main() -> None:
    host, user, password = sys.argv[1:4]
    project = sys.argv[4] if len(sys.argv) > 4 else "library"
    client = oras.client.OrasClient(hostname=host, insecure=True)
    client.login(username=user, password=password, hostname=host)
    target = f"{host}/{project}/oras-artifact:v1"
    with tempfile.TemporaryDirectory() as work:
        src = os.path.join(work, "src")
        os.makedirs(src)
        files = {"notes.txt": b"artifact notes\n" * 100, "data.bin": os.urandom(300_000)}
        paths = []
        for name, content in files.items():
            path = os.path.join(src, name)
            with open(path, "wb") as f:
                f.write(content)
            paths.append(path)
        # oras stores the path as given for the layer title: push from inside `src`.
        cwd = os.getcwd()
        os.chdir(src)
        try:
            resp = client.push(files=list(files), target=target)
        finally:
            os.chdir(cwd)
        assert resp.status_code == 201, resp.status_code
        out = os.path.join(work, "out")
        pulled = client.pull(target=target, outdir=out)
        assert sorted(os.path.basename(p) for p in pulled) == sorted(files), pulled
        for name, content in files.items():
            with open(os.path.join(out, name), "rb") as f:
                assert f.read() == content, name
        tags = client.get_tags(f"{host}/{project}/oras-artifact")
        assert tags == ["v1"], tags
    print("oras roundtrip ok")


if __name__ == "__main__":
    main()
