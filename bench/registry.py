"""A minimal registry client for the benchmark scripts: one keep-alive connection, Basic auth or
none, blobs pushed monolithically (with Distribution 2.8's fallback: it opens a session for a
POST with a digest, and the bytes then go with the PUT). Standard library only, so that the load
generator costs the same against every server."""

import base64
import hashlib
import http.client
import json
import sys
import urllib.parse

MANIFEST = "application/vnd.oci.image.manifest.v1+json"


class Registry:
    def __init__(self, base: str, creds: str | None = None) -> None:
        url = urllib.parse.urlsplit(base)
        self.host, self.port = url.hostname, url.port
        self.auth = {}
        if creds:
            self.auth["Authorization"] = "Basic " + base64.b64encode(creds.encode()).decode()
        self.conn = http.client.HTTPConnection(self.host, self.port, blocksize=1 << 20)

    def request(self, method: str, target: str, body=None, headers: dict | None = None, expect=(200,)):
        self.conn.request(method, target, body=body, headers={**self.auth, **(headers or {})})
        resp = self.conn.getresponse()
        data = resp.read()
        if resp.status not in expect:
            sys.exit(f"{method} {target}: {resp.status} {data[:200]!r}")
        return resp, data

    def push_blob(self, repo: str, body: bytes, digest: str | None = None, length: int | None = None) -> str:
        """Pushes bytes (or a readable file of `length` bytes with its `digest`); returns the digest."""
        if digest is None:
            digest = "sha256:" + hashlib.sha256(body).hexdigest()
        headers = {"Content-Type": "application/octet-stream"}
        if length is not None:
            headers["Content-Length"] = str(length)
        resp, _ = self.request("POST", f"/v2/{repo}/blobs/uploads/?digest={digest}", body, headers, (201, 202))
        if resp.status == 202:
            location = urllib.parse.urlsplit(resp.getheader("Location"))
            query = f"{location.query}&" if location.query else ""
            if hasattr(body, "seek"):
                body.seek(0)
            self.request("PUT", f"{location.path}?{query}digest={digest}", body, headers, (201,))
        return digest

    def push_manifest(
        self,
        repo: str,
        reference: str,
        config: tuple,
        layers: list,
        annotations: dict | None = None,
        layer_type: str = "application/vnd.oci.image.layer.v1.tar",
    ) -> str:
        """config and layers are (digest, size) pairs; returns the manifest's digest."""
        manifest = {
            "schemaVersion": 2,
            "mediaType": MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config[0], "size": config[1]},
            "layers": [{"mediaType": layer_type, "digest": d, "size": s} for d, s in layers],
        }
        if annotations:
            manifest["annotations"] = annotations
        body = json.dumps(manifest).encode()
        self.request("PUT", f"/v2/{repo}/manifests/{reference}", body, {"Content-Type": MANIFEST}, (201,))
        return "sha256:" + hashlib.sha256(body).hexdigest()

    def pull_image(self, repo: str, reference: str) -> int:
        """Pulls a manifest and every blob it names, checking each digest; returns the bytes read."""
        _, body = self.request("GET", f"/v2/{repo}/manifests/{reference}", headers={"Accept": MANIFEST})
        manifest = json.loads(body)
        total = len(body)
        for desc in [manifest["config"], *manifest["layers"]]:
            _, blob = self.request("GET", f"/v2/{repo}/blobs/{desc['digest']}")
            if "sha256:" + hashlib.sha256(blob).hexdigest() != desc["digest"]:
                sys.exit(f"{repo}: blob {desc['digest']} came back different")
            total += len(blob)
        return total
