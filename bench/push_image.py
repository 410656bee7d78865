"""Pushes a small OCI image (a config and one 1 KiB layer) as REPOSITORY:TAG. Arguments: the
repository URL (http://host:port/v2/name), the tag, and optionally user:password."""

import base64
import hashlib
import http.client
import json
import sys
import urllib.parse


def main() -> None:
    repo_url, tag = sys.argv[1], sys.argv[2]
    headers = {}
    if len(sys.argv) > 3:
        headers["Authorization"] = "Basic " + base64.b64encode(sys.argv[3].encode()).decode()
    url = urllib.parse.urlsplit(repo_url)
    conn = http.client.HTTPConnection(url.hostname, url.port)

    def send(method: str, target: str, body: bytes, extra: dict, expect: tuple) -> http.client.HTTPResponse:
        conn.request(method, target, body=body, headers={**headers, **extra})
        resp = conn.getresponse()
        resp.read()
        if resp.status not in expect:
            sys.exit(f"{method} {target}: {resp.status}")
        return resp

    descriptors = []
    for media_type, body in [
        ("application/vnd.oci.image.config.v1+json", b'{"architecture":"amd64","os":"linux"}'),
        ("application/vnd.oci.image.layer.v1.tar", bytes(range(256)) * 4),
    ]:
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        octets = {"Content-Type": "application/octet-stream"}
        resp = send("POST", f"{url.path}/blobs/uploads/?digest={digest}", body, octets, (201, 202))
        if resp.status == 202:
            # Distribution 2.8 opens a session for a monolithic POST: the bytes go with the PUT.
            location = urllib.parse.urlsplit(resp.getheader("Location"))
            sep = "&" if location.query else "?"
            target = f"{location.path}{'?' + location.query if location.query else ''}{sep}digest={digest}"
            send("PUT", target, body, octets, (201,))
        descriptors.append({"mediaType": media_type, "digest": digest, "size": len(body)})
    manifest = json.dumps({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": descriptors[0],
        "layers": descriptors[1:],
    }).encode()
    send("PUT", f"{url.path}/manifests/{tag}", manifest, {"Content-Type": "application/vnd.oci.image.manifest.v1+json"}, (201,))


if __name__ == "__main__":
    main()
