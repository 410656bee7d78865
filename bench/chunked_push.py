"""A blob push from a file, streamed. With a chunk size, as docker does it but in fixed-size
chunks: POST, then a PATCH with a Content-Range per chunk, then PUT with the digest; with chunk
size 0, monolithic: one POST with the digest and the whole body. Arguments: repository URL,
user:password, file, digest, chunk size in MiB."""

import base64
import http.client
import os
import sys
import urllib.parse


def main() -> None:
    repo_url, creds, path, digest, chunk_mib = sys.argv[1:6]
    chunk = int(chunk_mib) << 20
    url = urllib.parse.urlsplit(repo_url)
    auth = {"Authorization": "Basic " + base64.b64encode(creds.encode()).decode()}
    conn = http.client.HTTPConnection(url.hostname, url.port, blocksize=1 << 20)

    def send(method: str, target: str, body: bytes = b"", headers: dict | None = None) -> http.client.HTTPResponse:
        conn.request(method, target, body=body, headers={**auth, **(headers or {})})
        resp = conn.getresponse()
        resp.read()
        if resp.status >= 300:
            sys.exit(f"{method} {target}: {resp.status}")
        return resp

    if chunk == 0:
        with open(path, "rb") as f:
            headers = {"Content-Length": str(os.path.getsize(path)), "Content-Type": "application/octet-stream"}
            conn.request("POST", f"{url.path}/blobs/uploads/?digest={digest}", body=f, headers={**auth, **headers})
            resp = conn.getresponse()
            resp.read()
            if resp.status != 201:
                sys.exit(f"monolithic POST: {resp.status}")
        return
    location = send("POST", f"{url.path}/blobs/uploads/").getheader("Location")
    offset = 0
    with open(path, "rb") as f:
        while data := f.read(chunk):
            headers = {"Content-Range": f"{offset}-{offset + len(data) - 1}", "Content-Type": "application/octet-stream"}
            location = send("PATCH", location, data, headers).getheader("Location")
            offset += len(data)
    sep = "&" if "?" in location else "?"
    send("PUT", f"{location}{sep}digest={digest}")


if __name__ == "__main__":
    main()
