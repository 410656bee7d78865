#!/usr/bin/env python3
"""Checks deploy/helm/berth with Helm's own library (PyPI's helm-python-sdk binds Helm's Go SDK)
and Kubernetes' schemas (PyPI's kubernetes-validate), then runs what it renders.

  check_chart.py render OUT   renders every values file of test/values (and the chart's
                              defaults), lints each, validates every object, checks what each
                              case promises, and that refused values are refused; writes each
                              case's Berth configuration to OUT/<case>.yaml for the caller
                              (crates/berth/tests/helm.rs) to load with Berth's own parser.
  check_chart.py run          renders the production shape (3 replicas, external PostgreSQL,
                              Redis, S3, an ingress with the chart's certificate) against the
                              servers of this machine, starts Berth three times with each pod's
                              arguments, environment and mounted ConfigMap and Secret files,
                              puts nginx in front as the ingress with the Ingress's TLS Secret,
                              and pushes and pulls through it with skopeo trusting the CA that
                              systeminfo/getcert serves.
Environment for run: BERTH_BIN, BERTH_TEST_POSTGRES_URL, BERTH_TEST_S3_URL.
"""

import base64
import hashlib
import json
import os
import pathlib
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

import helm_python as helm
import kubernetes_validate
import yaml

HERE = pathlib.Path(__file__).resolve().parent
CHART = HERE.parent / "berth"
KUBE_VERSION = "1.30.0"
RELEASE, NAMESPACE = "registry", "registry"
# Custom resources kubernetes-validate has no schema for: checked by hand below.
CUSTOM_KINDS = {"ServiceMonitor"}


def fail(message: str) -> None:
    sys.exit(f"check_chart: {message}")


def render(values: dict) -> list[dict]:
    chart = helm.Chart.load(str(CHART))
    manifests = chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
    objects = []
    for path, text in sorted(manifests.items()):
        if path.endswith("NOTES.txt"):
            continue
        for doc in yaml.safe_load_all(text):
            if doc:
                objects.append(doc)
    return objects


def lint(values: dict) -> None:
    report = helm.lint(str(CHART), values, strict=True, namespace=NAMESPACE, kube_version="v" + KUBE_VERSION)
    problems = [m for m in report.get("messages") or [] if m.get("severity", 0) >= 2] + list(report.get("errors") or [])
    if problems:
        fail(f"helm lint: {problems}")


def validate(objects: list[dict]) -> None:
    for obj in objects:
        if obj["kind"] in CUSTOM_KINDS:
            continue
        try:
            kubernetes_validate.validate(obj, KUBE_VERSION, strict=True)
        except kubernetes_validate.ValidationError as e:
            fail(f"{obj['kind']} {obj['metadata']['name']}: {e.message} at {list(e.path)}")


def one(objects: list[dict], kind: str) -> dict:
    found = [o for o in objects if o["kind"] == kind]
    if len(found) != 1:
        fail(f"expected one {kind}, found {len(found)}")
    return found[0]


def kinds(objects: list[dict]) -> list[str]:
    return sorted(o["kind"] for o in objects)


def berth_config(objects: list[dict]) -> dict:
    return yaml.safe_load(one(objects, "ConfigMap")["data"]["berth.yaml"])


def container(objects: list[dict]) -> dict:
    return one(objects, "Deployment")["spec"]["template"]["spec"]["containers"][0]


def projected_files(objects: list[dict]) -> dict[str, str]:
    """The files the secrets volume holds: path -> Secret name."""
    volumes = one(objects, "Deployment")["spec"]["template"]["spec"]["volumes"]
    sources = next(v for v in volumes if v["name"] == "secrets")["projected"]["sources"]
    secrets = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Secret"}
    files = {}
    for source in sources:
        name = source["secret"]["name"]
        if "items" in source["secret"]:
            for item in source["secret"]["items"]:
                files[item["path"]] = name
        else:
            for key in secrets[name].get("data", {}):
                files[key] = name
    return files


def expect(case: str, condition: bool, what: str) -> None:
    if not condition:
        fail(f"{case}: {what}")


def check_case(case: str, objects: list[dict]) -> None:
    """What each values file promises, beyond rendering and validating."""
    config = berth_config(objects)
    deployment = one(objects, "Deployment")
    replicas = deployment["spec"]["replicas"]
    files = projected_files(objects)
    # Every *_file the configuration names is mounted.
    mounted = {m["mountPath"]: m["name"] for m in container(objects)["volumeMounts"]}
    for path in re.findall(r"(/etc/berth/[\w./-]+)", json.dumps(config)):
        directory, name = path.rsplit("/", 1)
        expect(case, directory in mounted, f"{path} is named by the configuration and not mounted")
        if directory == "/etc/berth/secrets":
            expect(case, name in files, f"{path} is named by the configuration and no Secret holds it")
    probes = [container(objects)[p]["httpGet"]["path"] for p in ("livenessProbe", "readinessProbe")]
    expect(case, probes == ["/livez", "/readyz"], f"probes {probes}")
    if case == "defaults":
        expect(case, replicas == 1 and deployment["spec"]["strategy"]["type"] == "Recreate", "one replica, recreated")
        expect(case, config["database"]["type"] == "embedded" and "redis" not in config, "embedded, no Redis")
        expect(case, "PersistentVolumeClaim" in kinds(objects), "a volume for the database and blobs")
        pvc = one(objects, "PersistentVolumeClaim")
        expect(case, pvc["metadata"]["annotations"].get("helm.sh/resource-policy") == "keep", "resourcePolicy keep")
        ingress = one(objects, "Ingress")
        expect(case, ingress["spec"]["tls"][0]["secretName"] == f"{RELEASE}-berth-expose-tls", "the chart's certificate")
        expect(case, config["tls"] == {"enabled": False, "ca_file": "/etc/berth/ca/ca.crt"}, "getcert serves the chart's CA")
    if case == "guide-production":
        expect(case, replicas == 3, f"3 replicas, not {replicas}")
        expect(case, deployment["spec"]["strategy"]["type"] == "RollingUpdate", "rolling updates")
        expect(case, "PersistentVolumeClaim" not in kinds(objects), "no volume: PostgreSQL and S3 hold everything")
        expect(case, one(objects, "PodDisruptionBudget")["spec"]["maxUnavailable"] == 1, "a disruption budget")
        monitor = one(objects, "ServiceMonitor")
        expect(case, monitor["metadata"]["labels"].get("release") == "kube-prometheus-stack", "additionalLabels")
        endpoint = monitor["spec"]["endpoints"][0]
        expect(case, endpoint["port"] == "metrics" and endpoint["scheme"] == "https", "metrics scraped over internal TLS")
        expect(case, endpoint["tlsConfig"]["ca"]["secret"]["name"] == f"{RELEASE}-berth-internal-tls", "with the internal CA")
        expect(case, config["storage"]["ca_file"] == "/etc/berth/storage-ca/ca.crt", "the storage CA bundle")
        volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
        expect(case, volumes["storage-ca"]["secret"]["secretName"] == "registry-s3-ca", "its Secret mounted")
        proxy = config["proxy"]
        expect(case, proxy["http_proxy"] == "http://proxy.example.com:3128", "proxy.httpProxy")
        expect(case, proxy["no_proxy"] == "127.0.0.1,localhost,.local,.internal,.svc", "proxy.noProxy")
        expect(case, proxy["components"] == ["core", "jobservice", "trivy"], "Harbor's components, as given")
        expect(case, config["vulndb"]["urls"] == ["https://osv-vulnerabilities.storage.googleapis.com/Alpine/all.zip"],
               "vulndb.urls")
        db = config["database"]["external"]
        expect(case, db["sslmode"] == "verify-full" and db["ca_file"] == "/etc/berth/database-ca/ca.crt", "verify-full")
        expect(case, files["database-password"] == "registry-db", "the database password from its Secret")
        redis = config["redis"]["external"]
        expect(case, redis["sentinel_master_set"] == "mymaster" and redis["addrs"].count(",") == 2, "Sentinels")
        expect(case, files["redis-password"] == "registry-redis" and files["admin-password"] == "registry-admin", "secrets")
        expect(case, config["storage"]["s3"]["root"] == "harbor" and config["storage"]["redirect"] is True, "S3")
        env = {e["name"]: e for e in container(objects)["env"]}
        ref = env["BERTH_STORAGE__S3__ACCESS_KEY"]["valueFrom"]["secretKeyRef"]
        expect(case, ref == {"name": "registry-s3", "key": "REGISTRY_STORAGE_S3_ACCESSKEY"}, "S3 key from the Secret")
        expect(case, config["tls"]["enabled"] and config["http"]["addr"].endswith(":8443"), "internal TLS on the pods")
        ingress = one(objects, "Ingress")
        expect(case, ingress["spec"]["ingressClassName"] == "nginx", "className")
        annotations = ingress["metadata"]["annotations"]
        expect(case, annotations.get("cert-manager.io/cluster-issuer") == "letsencrypt", "cert-manager's annotation")
        expect(case, annotations.get("nginx.ingress.kubernetes.io/backend-protocol") == "HTTPS", "HTTPS to the pods")
        expect(case, config["metrics"] == {"enabled": True, "path": "/metrics", "port": 8001}, "metrics port")
        pod = deployment["spec"]["template"]["spec"]
        expect(case, pod["tolerations"][0]["key"] == "dedicated" and "podAntiAffinity" in pod["affinity"], "placement")
    if case == "trial":
        service = one(objects, "Service")
        expect(case, service["metadata"]["name"] == "harbor" and service["spec"]["type"] == "ClusterIP", "Harbor's name")
        expect(case, service["spec"]["ports"][0]["port"] == 443, "HTTPS on 443")
        expect(case, config["tls"]["cert_file"] == "/etc/berth/tls/tls.crt", "Berth terminates TLS")
        expect(case, "Ingress" not in kinds(objects), "no ingress")
        secret = next(o for o in objects if o["metadata"]["name"] == f"{RELEASE}-berth-expose-tls")
        cert = base64.b64decode(secret["data"]["tls.crt"]).decode()
        expect(case, check_cert_names(cert) == ["berth.registry.svc"], "the certificate names the common name")
    if case == "nodeport-plain":
        service = one(objects, "Service")
        expect(case, service["spec"]["type"] == "NodePort" and service["spec"]["ports"][0]["nodePort"] == 30002, "NodePort")
        expect(case, config["log"]["level"] == "warn", "Harbor's warning is Berth's warn")
        expect(case, config["trace"]["sample_rate"] == 0.5, "the trace settings")
        expect(case, one(objects, "PersistentVolumeClaim")["spec"]["storageClassName"] == "", "storageClass -")
    if case == "loadbalancer-gcs":
        service = one(objects, "Service")
        expect(case, service["spec"]["type"] == "LoadBalancer", "LoadBalancer")
        expect(case, service["spec"]["loadBalancerSourceRanges"] == ["10.0.0.0/8"], "sourceRanges")
        expect(case, "credentials_file" not in config["storage"]["gcs"], "workload identity: no key file")
        expect(case, config["redis"]["external"]["addrs"] == ["10.1.0.6:26379", "10.1.0.7:26379"], "a list of addresses")
        expect(case, config["redis"]["external"]["tls"] is True, "Redis over TLS")
        expect(case, files["token-key"] == "registry-token-key", "the token key from core.secretName")
        expect(case, "PersistentVolumeClaim" not in kinds(objects), "no volume")
    if case == "azure-internal-tls-manual":
        expect(case, config["storage"]["azure"]["endpoint"] == "https://registryacct.blob.core.chinacloudapi.cn", "realm")
        expect(case, files["azure-account-key"] == "registry-azure", "the account key from its Secret")
        expect(case, "tls" not in one(objects, "Ingress")["spec"], "certSource none: the controller's certificate")
        expect(case, config["tls"]["strong_ssl_ciphers"] is True, "strong ciphers")
    if case == "shared-filesystem":
        expect(case, replicas == 2 and deployment["spec"]["strategy"]["type"] == "RollingUpdate", "2 replicas rolling")
        expect(case, one(objects, "PersistentVolumeClaim")["spec"]["accessModes"] == ["ReadWriteMany"], "RWX")
        secret = next(o for o in objects if o["kind"] == "Secret" and o["metadata"]["name"] == f"{RELEASE}-berth")
        key = base64.b64decode(secret["data"]["token-key"]).decode()
        expect(case, key.startswith("-----BEGIN EC PRIVATE KEY-----\nMHcC"), "core.tokenKey as given")


def check_cert_names(pem: str) -> list[str]:
    out = subprocess.run(["openssl", "x509", "-noout", "-ext", "subjectAltName"], input=pem.encode(),
                         capture_output=True, check=True).stdout.decode()
    return re.findall(r"DNS:([^,\s]+)", out)


# Values Berth cannot honour, and what the refusal must say.
REFUSED = [
    ({"proxy": {"components": ["core", "portal"]}}, 'unknown component "portal"'),
    ({"core": {"replicas": 3}}, "need database.type external"),
    ({"core": {"replicas": 2}, "database": {"type": "external"}}, "need redis.type external"),
    ({"core": {"replicas": 2}, "database": {"type": "external"}, "redis": {"type": "external"}}, "ReadWriteMany"),
    ({"persistence": {"imageChartStorage": {"type": "swift"}}}, "feature opendal"),
    ({"persistence": {"imageChartStorage": {"type": "s3", "s3": {"encrypt": True}}}}, "s3.encrypt is not supported"),
    ({"expose": {"type": "route"}}, "expose.type must be"),
    ({"expose": {"tls": {"certSource": "secret"}}}, "needs expose.tls.secret.secretName"),
    ({"expose": {"type": "clusterIP", "tls": {"certSource": "none"}}}, "needs expose.type ingress"),
    ({"trace": {"enabled": True, "provider": "jaeger"}}, "OTLP only"),
    ({"core": {"tokenKey": "-----BEGIN RSA PRIVATE KEY-----\nx\n-----END RSA PRIVATE KEY-----\n"}}, "not RSA"),
    ({"internalTLS": {"enabled": True, "certSource": "manual"}}, "needs internalTLS.trustCa"),
    ({"database": {"type": "internal"}, "persistence": {"enabled": False}}, "needs persistence.enabled"),
    ({"logLevel": "verbose"}, "logLevel must be"),
]


def render_all(out: pathlib.Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    cases = [("defaults", {})] + [(p.stem, yaml.safe_load(p.read_text())) for p in sorted((HERE / "values").glob("*.yaml"))]
    for case, values in cases:
        objects = render(values)
        lint(values)
        validate(objects)
        check_case(case, objects)
        (out / f"{case}.yaml").write_text(one(objects, "ConfigMap")["data"]["berth.yaml"])
        print(f"ok: {case}: {', '.join(kinds(objects))}")
    for values, message in REFUSED:
        try:
            render(values)
        except helm.HelmError as e:
            if message not in str(e):
                fail(f"{values} was refused, but not with {message!r}: {e}")
            print(f"ok: refused {json.dumps(values)}")
            continue
        fail(f"{values} rendered; it must be refused ({message})")


# ---- run: the rendered production shape on this machine ----------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, what: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    fail(f"{what} did not listen on {port}")


class Pods:
    """Pods' processes, and what to stop at the end."""

    def __init__(self) -> None:
        self.children: list[subprocess.Popen] = []

    def spawn(self, args, **kw) -> subprocess.Popen:
        child = subprocess.Popen(args, start_new_session=True, **kw)
        self.children.append(child)
        return child

    def stop(self) -> None:
        for child in self.children:
            try:
                os.killpg(child.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for child in self.children:
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)


def secret_data(objects: list[dict], name: str) -> dict[str, bytes]:
    secret = next((o for o in objects if o["kind"] == "Secret" and o["metadata"]["name"] == name), None)
    if secret is None:
        fail(f"the pod mounts Secret {name}, which the chart did not render")
    return {k: base64.b64decode(v) for k, v in secret.get("data", {}).items()}


def volume_files(objects: list[dict], volume: dict) -> dict[str, bytes] | None:
    """The files a volume holds (None: a directory of the pod's own)."""
    if "configMap" in volume:
        cm = next(o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"] == volume["configMap"]["name"])
        return {k: v.encode() for k, v in cm["data"].items()}
    sources = [{"secret": volume["secret"] | {"name": volume["secret"]["secretName"]}}] if "secret" in volume else None
    if "projected" in volume:
        sources = volume["projected"]["sources"]
    if sources is None:
        return None
    files = {}
    for source in sources:
        data = secret_data(objects, source["secret"]["name"])
        items = source["secret"].get("items")
        for key, value in data.items():
            if items is None:
                files[key] = value
        for item in items or []:
            files[item["path"]] = data[item["key"]]
    return files


def start_pod(pods: Pods, objects: list[dict], root: pathlib.Path, berth: str, extra_env: dict) -> subprocess.Popen:
    """Runs the Deployment's container as a process: its mounts become directories under
    `root` (paths in its arguments and configuration rewritten to them), its environment is
    resolved from the rendered Secrets, and `extra_env` gives what a pod has of its own (the
    address it listens on)."""
    spec = one(objects, "Deployment")["spec"]["template"]["spec"]
    ctr = spec["containers"][0]
    volumes = {v["name"]: v for v in spec["volumes"]}
    remap = {}
    for mount in ctr["volumeMounts"]:
        target = root / mount["mountPath"].lstrip("/")
        target.mkdir(parents=True, exist_ok=True)
        remap[mount["mountPath"]] = str(target)
        files = volume_files(objects, volumes[mount["name"]])
        for name, content in (files or {}).items():
            (target / name).write_bytes(content)

    # One pass, longest mount first: a mount's new place may itself start with another mount
    # path (/tmp).
    pattern = re.compile("|".join(re.escape(p) + r'(?=[/"\s]|$)' for p in sorted(remap, key=len, reverse=True)))

    def rewrite(text: str) -> str:
        return pattern.sub(lambda m: remap[m.group(0)], text)

    for mount in ctr["volumeMounts"]:
        if mount["name"] == "config":
            for f in pathlib.Path(remap[mount["mountPath"]]).iterdir():
                f.write_text(rewrite(f.read_text()))
    env = {"PATH": os.environ["PATH"]}
    for var in ctr.get("env") or []:
        if "value" in var:
            env[var["name"]] = var["value"]
        else:
            ref = var["valueFrom"]["secretKeyRef"]
            env[var["name"]] = secret_data(objects, ref["name"])[ref["key"]].decode()
    env.update(extra_env)
    args = [rewrite(a) for a in ctr["args"]]
    log = open(root / "berth.log", "w")
    return pods.spawn([berth, *args], env=env, stdout=log, stderr=subprocess.STDOUT)


def wait_http(url: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    fail(f"{url} did not answer 200")


def start_ingress(pods: Pods, objects: list[dict], work: pathlib.Path, upstreams: list[str], port: int) -> None:
    """nginx as the ingress controller on `port`: the Ingress's host and TLS Secret, the body
    size of its annotation, to the Service's pods."""
    work.mkdir(parents=True)
    ingress = one(objects, "Ingress")
    host = ingress["spec"]["rules"][0]["host"]
    tls = secret_data(objects, ingress["spec"]["tls"][0]["secretName"])
    (work / "tls.crt").write_bytes(tls["tls.crt"])
    (work / "tls.key").write_bytes(tls["tls.key"])
    body = ingress["metadata"]["annotations"].get("nginx.ingress.kubernetes.io/proxy-body-size", "1m")
    servers = "".join(f"server {u} max_fails=0;\n" for u in upstreams)
    d = work
    (work / "nginx.conf").write_text(f"""
user root; worker_processes 1; error_log {d}/error.log warn; pid {d}/nginx.pid;
events {{ worker_connections 256; }}
http {{
  access_log {d}/access.log;
  client_body_temp_path {d}/body; proxy_temp_path {d}/proxy; fastcgi_temp_path {d}/fastcgi;
  uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;
  upstream berth {{ {servers} }}
  server {{
    listen 127.0.0.1:{port} ssl;
    server_name {host};
    ssl_certificate {d}/tls.crt; ssl_certificate_key {d}/tls.key;
    client_max_body_size {body};
    location / {{
      proxy_pass http://berth;
      proxy_http_version 1.1;
      proxy_set_header Host $http_host;
      proxy_set_header X-Forwarded-Proto https;
      proxy_request_buffering off;
      proxy_buffering off;
    }}
  }}
}}
""")
    pods.spawn(["nginx", "-p", str(work), "-c", str(work / "nginx.conf"), "-g", "daemon off;"], stdout=subprocess.DEVNULL)
    wait_port(port, "nginx")


def oci_layout(directory: pathlib.Path) -> str:
    """A one-layer image as an OCI layout (what skopeo pushes); returns its manifest's digest."""
    blobs = directory / "blobs" / "sha256"
    blobs.mkdir(parents=True)

    def blob(data: bytes) -> dict:
        digest = hashlib.sha256(data).hexdigest()
        (blobs / digest).write_bytes(data)
        return {"digest": f"sha256:{digest}", "size": len(data)}

    import io, tarfile
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w") as tar:
        content = b"installed by the Helm chart\n" * 500
        info = tarfile.TarInfo("etc/motd")
        info.size = len(content)
        tar.addfile(info, io.BytesIO(content))
    layer_desc = blob(layer.getvalue()) | {"mediaType": "application/vnd.oci.image.layer.v1.tar"}
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [layer_desc["digest"]]}}).encode()
    config_desc = blob(config) | {"mediaType": "application/vnd.oci.image.config.v1+json"}
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": config_desc, "layers": [layer_desc]}).encode()
    manifest_desc = blob(manifest) | {"mediaType": "application/vnd.oci.image.manifest.v1+json",
                                      "annotations": {"org.opencontainers.image.ref.name": "v1"}}
    (directory / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [manifest_desc]}))
    (directory / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    return manifest_desc["digest"]


def psql(url: str, sql: str) -> None:
    subprocess.run(["psql", url, "-qc", sql], check=True, stdout=subprocess.DEVNULL)


def run_rendered() -> None:
    berth = os.environ["BERTH_BIN"]
    pg = urllib.parse.urlsplit(os.environ["BERTH_TEST_POSTGRES_URL"])
    s3 = os.environ["BERTH_TEST_S3_URL"]
    work = pathlib.Path(tempfile.mkdtemp(prefix="berth-helm-"))
    pods = Pods()
    database = f"berth_test_helm_{os.getpid()}_{time.time_ns()}"
    try:
        psql(os.environ["BERTH_TEST_POSTGRES_URL"], f'CREATE DATABASE "{database}"')
        redis_port = free_port()
        pods.spawn(["redis-server", "--bind", "127.0.0.1", "--port", str(redis_port), "--save", "", "--appendonly", "no"],
                   stdout=subprocess.DEVNULL)
        wait_port(redis_port, "redis-server")
        ingress_port = free_port()  # nginx binds it below: the URL must be known to render
        values = yaml.safe_load((HERE / "values" / "guide-production.yaml").read_text())
        # The guide's production values, pointed at this machine's servers and without the
        # Secrets a cluster would already hold (the chart makes its own).
        values["expose"]["tls"] = {"enabled": True, "certSource": "auto"}
        values["expose"]["ingress"]["hosts"]["core"] = "localhost"
        values["externalURL"] = f"https://localhost:{ingress_port}"
        values["internalTLS"] = {"enabled": False}
        # Nor a corporate proxy or the internet's feeds (the proxy is tested in
        # crates/berth/tests/outbound.rs).
        for key in ("existingSecretAdminPassword", "existingSecretSecretKey", "proxy", "vulndb"):
            values.pop(key)
        values["harborAdminPassword"] = "Chart-admin-1"
        values["database"]["external"] = {"host": pg.hostname, "port": str(pg.port or 5432), "username": pg.username,
                                          "password": pg.password or "", "coreDatabase": database, "sslmode": "disable"}
        values["redis"]["external"] = {"addr": f"127.0.0.1:{redis_port}", "sentinelMasterSet": ""}
        values["persistence"]["imageChartStorage"].pop("caBundleSecretName")
        values["persistence"]["imageChartStorage"]["s3"] = {
            "region": "us-east-1", "bucket": "berth-test", "regionendpoint": s3, "forcepathstyle": True,
            "accesskey": "berth-test", "secretkey": "berth-test-secret", "rootdirectory": f"/helm-{time.time_ns()}"}
        objects = render(values)
        validate(objects)
        replicas = one(objects, "Deployment")["spec"]["replicas"]
        assert replicas == 3, replicas
        addrs = []
        for i in range(replicas):
            port, metrics = free_port(), free_port()
            start_pod(pods, objects, work / f"pod-{i}", berth,
                      {"BERTH_HTTP__ADDR": f"127.0.0.1:{port}", "BERTH_METRICS__PORT": str(metrics)})
            wait_http(f"http://127.0.0.1:{port}/readyz")
            wait_http(f"http://127.0.0.1:{metrics}/metrics")
            addrs.append(f"127.0.0.1:{port}")
        print(f"ok: {replicas} replicas ready at {', '.join(addrs)}")
        # The ingress on the port externalURL names.
        port = ingress_port
        start_ingress(pods, objects, work / "ingress", addrs, port)
        base = f"https://localhost:{port}"
        # The CA comes from the registry itself, as the docker CLI's certs.d workflow has it.
        insecure = ssl.create_default_context()
        insecure.check_hostname, insecure.verify_mode = False, ssl.CERT_NONE
        ca = urllib.request.urlopen(f"{base}/api/v2.0/systeminfo/getcert", context=insecure).read()
        rendered_ca = secret_data(objects, f"{RELEASE}-berth-expose-tls")["ca.crt"]
        if ca != rendered_ca:
            fail("systeminfo/getcert does not serve the chart's CA")
        certs = work / "certs.d"
        certs.mkdir()
        (certs / "ca.crt").write_bytes(ca)
        creds = "admin:Chart-admin-1"
        auth = {"Authorization": "Basic " + base64.b64encode(creds.encode()).decode()}
        trusted = ssl.create_default_context(cadata=ca.decode())
        req = urllib.request.Request(f"{base}/api/v2.0/systeminfo", headers=auth)
        info = json.loads(urllib.request.urlopen(req, context=trusted).read())
        if info.get("external_url") != values["externalURL"]:
            fail(f"systeminfo's external_url is {info.get('external_url')}")
        layout = work / "layout"
        digest = oci_layout(layout)
        skopeo = ["skopeo", "--command-timeout", "120s"]
        # Without the CA, skopeo refuses the chart's certificate.
        refused = subprocess.run([*skopeo, "inspect", "--creds", creds, f"docker://localhost:{port}/library/app:v1"],
                                 capture_output=True, text=True)
        if refused.returncode == 0 or "certificate" not in refused.stderr:
            fail(f"skopeo without the CA: {refused.returncode} {refused.stderr[-300:]}")
        subprocess.run([*skopeo, "copy", "--preserve-digests", "--dest-cert-dir", str(certs), "--dest-creds", creds,
                        f"oci:{layout}:v1", f"docker://localhost:{port}/library/app:v1"], check=True)
        pulled = work / "pulled"
        subprocess.run([*skopeo, "copy", "--preserve-digests", "--src-cert-dir", str(certs), "--src-creds", creds,
                        f"docker://localhost:{port}/library/app:v1", f"oci:{pulled}:v1"], check=True)
        index = json.loads((pulled / "index.json").read_text())
        if index["manifests"][0]["digest"] != digest:
            fail(f"pulled {index['manifests'][0]['digest']}, pushed {digest}")
        for blob in (layout / "blobs" / "sha256").iterdir():
            if (pulled / "blobs" / "sha256" / blob.name).read_bytes() != blob.read_bytes():
                fail(f"blob {blob.name} came back different")
        # Every replica serves it: one database, one store.
        for addr in addrs:
            req = urllib.request.Request(f"http://{addr}/v2/library/app/manifests/v1", method="HEAD",
                                         headers=auth | {"Accept": "application/vnd.oci.image.manifest.v1+json"})
            got = urllib.request.urlopen(req).headers.get("Docker-Content-Digest")
            if got != digest:
                fail(f"replica {addr} answers {got} for library/app:v1")
        print(f"ok: skopeo pushed and pulled {digest} through the ingress with the CA from getcert; 3 replicas serve it")
    finally:
        pods.stop()
        try:
            psql(os.environ["BERTH_TEST_POSTGRES_URL"], f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        except subprocess.CalledProcessError:
            pass
        if os.environ.get("KEEP_WORK"):
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "render":
        render_all(pathlib.Path(sys.argv[2] if len(sys.argv) > 2 else tempfile.mkdtemp()))
    elif len(sys.argv) == 2 and sys.argv[1] == "run":
        run_rendered()
    else:
        sys.exit(__doc__)
