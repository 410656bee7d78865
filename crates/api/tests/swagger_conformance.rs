//! Conformance with Harbor's swagger (`tests/fixtures/harbor-swagger.yaml`, copied from the
//! reference): every operation Berth serves answers with a status the swagger documents for it,
//! and its body validates against the documented schema. The number of operations served is
//! checked against docs/harbor-api.md.

mod common;

const REPORT_V11: &str = "application/vnd.security.vulnerability.report; version=1.1";

use common::*;
use reqwest::Method;
use serde_json::{Value, json};

fn swagger() -> Value {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/harbor-swagger.yaml")).unwrap();
    serde_saphyr::from_str(&text).unwrap()
}

/// The swagger operation for a method and a concrete path (`{param}` segments match anything).
fn operation<'a>(spec: &'a Value, method: &str, path: &str) -> Option<(&'a str, &'a Value)> {
    let path = path.split('?').next().unwrap_or(path).trim_start_matches("/api/v2.0");
    let want: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    for (template, ops) in spec["paths"].as_object()? {
        let have: Vec<&str> = template.trim_end_matches('/').split('/').collect();
        let matches = have.len() == want.len()
            && have.iter().zip(&want).all(|(h, w)| h == w || (h.starts_with('{') && h.ends_with('}')));
        if let (true, Some(op)) = (matches, ops.get(method.to_lowercase())) {
            return Some((op["operationId"].as_str()?, op));
        }
    }
    None
}

/// Validates `value` against a swagger 2.0 schema (the subset Harbor's definitions use).
fn validate(spec: &Value, schema: &Value, value: &Value, at: &str, errors: &mut Vec<String>) {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        let name = r.trim_start_matches("#/definitions/");
        return validate(spec, &spec["definitions"][name], value, &format!("{at}<{name}>"), errors);
    }
    if value.is_null() {
        return; // go-swagger clients accept null for absent optional values
    }
    let kind = schema.get("type").and_then(Value::as_str);
    let ok = match kind {
        Some("object") | None if schema.get("properties").is_some() || schema.get("additionalProperties").is_some() => {
            let Some(obj) = value.as_object() else {
                errors.push(format!("{at}: expected an object, got {value}"));
                return;
            };
            if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                for (k, v) in obj {
                    if let Some(s) = props.get(k) {
                        validate(spec, s, v, &format!("{at}.{k}"), errors);
                    }
                }
            }
            if let Some(extra) = schema.get("additionalProperties").filter(|a| a.is_object()) {
                for (k, v) in obj {
                    validate(spec, extra, v, &format!("{at}.{k}"), errors);
                }
            }
            true
        }
        // A bare `type: object` is go-swagger's `interface{}` (Harbor's `ExtraAttrs` values are
        // strings such as "amd64" under it): any value.
        Some("object") => true,
        Some("array") => {
            let Some(items) = value.as_array() else {
                errors.push(format!("{at}: expected an array, got {value}"));
                return;
            };
            for (i, item) in items.iter().enumerate() {
                validate(spec, &schema["items"], item, &format!("{at}[{i}]"), errors);
            }
            true
        }
        Some("string") => value.is_string(),
        Some("integer") => value.is_i64() || value.is_u64(),
        Some("number") => value.is_number(),
        Some("boolean") => value.is_boolean(),
        _ => true,
    };
    if !ok {
        errors.push(format!("{at}: expected {}, got {value}", kind.unwrap_or("?")));
    }
}

/// Statuses Harbor itself answers but its swagger leaves out: its handlers refuse anonymous
/// callers with 401, and callers without the permission with 403, before the operation's own
/// checks.
const HARBOR_UNDOCUMENTED: &[(&str, u16)] = &[("ListRobot", 401), ("deleteProject", 401), ("CreateLabel", 403)];

struct Checker {
    spec: Value,
    s: TestServer,
    served: std::collections::BTreeSet<String>,
    errors: Vec<String>,
}

impl Checker {
    /// Sends a request as the administrator and checks it against the swagger (after the same
    /// request sent anonymously, which must be answered as documented too and, if it would
    /// change something, refused); returns the body.
    async fn call(&mut self, method: Method, path: &str, body: Option<Value>, expect: u16) -> Value {
        let anon = self.s.anon.clone();
        let (status, _) = self.send(&anon, method.clone(), path, body.clone()).await;
        if method != Method::GET && method != Method::HEAD && status < 400 {
            self.errors.push(format!("anonymous {method} {path} was not refused: {status}"));
        }
        let admin = self.s.client.clone();
        self.call_as(&admin, method, path, body, expect).await
    }

    /// Sends a request as `client`, expecting `expect`; returns the body.
    async fn call_as(
        &mut self,
        client: &reqwest::Client,
        method: Method,
        path: &str,
        body: Option<Value>,
        expect: u16,
    ) -> Value {
        let (status, value) = self.send(client, method.clone(), path, body).await;
        if status != expect {
            self.errors.push(format!("{method} {path}: status {status}, expected {expect}: {value}"));
        } else if let Some((id, _)) = operation(&self.spec, method.as_str(), path) {
            self.served.insert(id.to_string());
        }
        value
    }

    /// Sends a request; checks that its status is documented for the operation and that the
    /// body validates against the documented schema (error bodies against `Errors`).
    async fn send(
        &mut self,
        client: &reqwest::Client,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let Some((id, op)) = operation(&self.spec, method.as_str(), path) else {
            panic!("{method} {path} is not in Harbor's swagger");
        };
        let (id, op) = (id.to_string(), op.clone());
        let mut req = client.request(method.clone(), self.s.url(path));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        let value: Value =
            if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
        let documented = op["responses"].get(status.to_string()).cloned().or_else(|| {
            HARBOR_UNDOCUMENTED
                .contains(&(id.as_str(), status))
                .then(|| json!({"$ref": format!("#/responses/{status}")}))
        });
        let Some(mut documented) = documented else {
            self.errors.push(format!("{id} ({method} {path}): status {status} is not documented: {value}"));
            return (status, value);
        };
        if let Some(r) = documented.get("$ref").and_then(Value::as_str) {
            documented = self.spec["responses"][r.trim_start_matches("#/responses/")].clone();
        }
        if let Some(schema) = documented.get("schema").filter(|s| s["type"] != "string") {
            validate(&self.spec, schema, &value, &format!("{id} {status}"), &mut self.errors);
        }
        if status >= 400 && method != Method::HEAD && !value["errors"][0]["code"].is_string() {
            self.errors.push(format!("{id} ({method} {path}): error {status} without Harbor's error body: {value}"));
        }
        (status, value)
    }
}

#[tokio::test]
async fn served_operations_answer_as_documented() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    s.push_image("t/app", "v1", &[b"layer"]).await;
    let mut c = Checker { spec: swagger(), s, served: Default::default(), errors: Vec::new() };
    use Method as M;

    c.call(M::GET, "/api/v2.0/ping", None, 200).await;
    c.call(M::GET, "/api/v2.0/health", None, 200).await;
    c.call(M::GET, "/api/v2.0/systeminfo", None, 200).await;
    c.call(M::GET, "/api/v2.0/permissions", None, 200).await;
    c.call(M::GET, "/api/v2.0/users/current", None, 200).await;
    c.call(M::GET, "/api/v2.0/users/current/permissions?scope=/project/2&relative=true", None, 200).await;
    c.call(
        M::POST,
        "/api/v2.0/users",
        Some(json!({"username": "u1", "password": "Passw0rdX", "email": "u1@example.com"})),
        201,
    )
    .await;
    let users = c.call(M::GET, "/api/v2.0/users", None, 200).await;
    let uid = users.as_array().unwrap().iter().find(|u| u["username"] == "u1").unwrap()["user_id"].as_i64().unwrap();
    c.call(M::GET, "/api/v2.0/users/search?username=u", None, 200).await;
    c.call(M::GET, &format!("/api/v2.0/users/{uid}"), None, 200).await;
    c.call(M::PUT, &format!("/api/v2.0/users/{uid}"), Some(json!({"realname": "U One"})), 200).await;
    c.call(M::PUT, &format!("/api/v2.0/users/{uid}/password"), Some(json!({"new_password": "Other1234X"})), 200).await;
    c.call(M::PUT, &format!("/api/v2.0/users/{uid}/sysadmin"), Some(json!({"sysadmin_flag": false})), 200).await;
    c.call(M::PUT, &format!("/api/v2.0/users/{uid}/cli_secret"), Some(json!({"secret": "x"})), 412).await;

    c.call(M::POST, "/api/v2.0/projects", Some(json!({"project_name": "conf", "metadata": {"public": "false"}})), 201)
        .await;
    c.call(M::HEAD, "/api/v2.0/projects?project_name=conf", None, 200).await;
    c.call(M::GET, "/api/v2.0/projects", None, 200).await;
    c.call(M::GET, "/api/v2.0/projects/conf", None, 200).await;
    c.call(M::GET, "/api/v2.0/projects/conf/summary", None, 200).await;
    c.call(M::GET, "/api/v2.0/projects/conf/_deletable", None, 200).await;
    c.call(M::GET, "/api/v2.0/systeminfo/getcert", None, 404).await;
    let volumes = c.call(M::GET, "/api/v2.0/systeminfo/volumes", None, 200).await;
    // A volume's size where there is a volume; object storage has none.
    match c.s.registry.storage_provider() {
        "filesystem" => assert!(volumes["storage"][0]["total"].as_u64().unwrap() > 0),
        _ => assert_eq!(volumes["storage"], json!([])),
    }
    c.call(M::PUT, "/api/v2.0/projects/conf", Some(json!({"metadata": {"auto_scan": "true"}})), 200).await;
    let project_list = json!({"metadata": {"reuse_sys_cve_allowlist": "false"}, "cve_allowlist": {"items": [{"cve_id": "CVE-2024-1"}]}});
    c.call(M::PUT, "/api/v2.0/projects/conf", Some(project_list), 200).await;
    let conf = c.call(M::GET, "/api/v2.0/projects/conf", None, 200).await;
    assert_eq!(conf["cve_allowlist"]["items"], json!([{"cve_id": "CVE-2024-1"}]), "{conf}");
    let system = json!({"expires_at": 4102444800_i64, "items": [{"cve_id": "CVE-2024-2"}]});
    c.call(M::PUT, "/api/v2.0/system/CVEAllowlist", Some(system), 200).await;
    let system = c.call(M::GET, "/api/v2.0/system/CVEAllowlist", None, 200).await;
    assert_eq!((system["project_id"].as_i64(), system["expires_at"].as_i64()), (Some(0), Some(4102444800)), "{system}");
    c.call(M::GET, "/api/v2.0/projects/conf/metadatas/", None, 200).await;
    c.call(M::POST, "/api/v2.0/projects/conf/metadatas/", Some(json!({"severity": "high"})), 200).await;
    c.call(M::GET, "/api/v2.0/projects/conf/metadatas/severity", None, 200).await;
    c.call(M::PUT, "/api/v2.0/projects/conf/metadatas/severity", Some(json!({"severity": "low"})), 200).await;
    c.call(M::DELETE, "/api/v2.0/projects/conf/metadatas/severity", None, 200).await;
    c.call(
        M::POST,
        "/api/v2.0/projects/conf/members",
        Some(json!({"role_id": 2, "member_user": {"username": "u1"}})),
        201,
    )
    .await;
    let members = c.call(M::GET, "/api/v2.0/projects/conf/members", None, 200).await;
    let mid = members.as_array().unwrap().iter().find(|m| m["entity_name"] == "u1").unwrap()["id"].as_i64().unwrap();
    c.call(M::GET, &format!("/api/v2.0/projects/conf/members/{mid}"), None, 200).await;
    c.call(M::PUT, &format!("/api/v2.0/projects/conf/members/{mid}"), Some(json!({"role_id": 3})), 200).await;
    c.call(M::DELETE, &format!("/api/v2.0/projects/conf/members/{mid}"), None, 200).await;

    let robot = json!({"name": "conf", "level": "project", "duration": -1,
        "permissions": [{"kind": "project", "namespace": "conf", "access": [{"resource": "repository", "action": "pull"}]}]});
    let created = c.call(M::POST, "/api/v2.0/robots", Some(robot.clone()), 201).await;
    let rid = created["id"].as_i64().unwrap();
    c.call(M::GET, "/api/v2.0/robots", None, 200).await;
    c.call(M::GET, &format!("/api/v2.0/robots/{rid}"), None, 200).await;
    c.call(M::PUT, &format!("/api/v2.0/robots/{rid}"), Some(robot), 200).await;
    c.call(M::PATCH, &format!("/api/v2.0/robots/{rid}"), Some(json!({})), 200).await;
    c.call(M::DELETE, &format!("/api/v2.0/robots/{rid}"), None, 200).await;

    c.call(M::GET, "/api/v2.0/repositories", None, 200).await;
    c.call(M::GET, "/api/v2.0/projects/t/repositories", None, 200).await;
    c.call(M::GET, "/api/v2.0/projects/t/repositories/app", None, 200).await;
    c.call(M::PUT, "/api/v2.0/projects/t/repositories/app", Some(json!({"description": "d"})), 200).await;
    c.call(M::GET, "/api/v2.0/projects/t/repositories/app/artifacts", None, 200).await;
    c.call(M::GET, "/api/v2.0/projects/t/repositories/app/artifacts/v1", None, 200).await;
    c.call(M::GET, "/api/v2.0/projects/t/repositories/app/artifacts/v1/tags", None, 200).await;
    c.call(M::GET, "/api/v2.0/projects/t/repositories/app/artifacts/v1/accessories", None, 200).await;
    c.call(M::POST, "/api/v2.0/projects/t/repositories/copied/artifacts?from=t/app:v1", None, 201).await;
    c.call(M::POST, "/api/v2.0/projects/t/repositories/app/artifacts/v1/tags", Some(json!({"name": "extra"})), 201)
        .await;
    c.call(M::DELETE, "/api/v2.0/projects/t/repositories/app/artifacts/v1/tags/extra", None, 200).await;
    c.call(M::GET, "/api/v2.0/search?q=app", None, 200).await;
    c.call(M::GET, "/api/v2.0/statistics", None, 200).await;

    c.call(M::POST, "/api/v2.0/labels", Some(json!({"name": "conf", "scope": "g", "color": "#FFFFFF"})), 201).await;
    let labels = c.call(M::GET, "/api/v2.0/labels?scope=g", None, 200).await;
    let lid = labels[0]["id"].as_i64().unwrap();
    c.call(M::GET, &format!("/api/v2.0/labels/{lid}"), None, 200).await;
    c.call(M::PUT, &format!("/api/v2.0/labels/{lid}"), Some(json!({"description": "d"})), 200).await;
    let on_artifact = "/api/v2.0/projects/t/repositories/app/artifacts/v1/labels";
    c.call(M::POST, on_artifact, Some(json!({"id": lid})), 200).await;
    c.call(M::GET, "/api/v2.0/projects/t/repositories/app/artifacts?with_label=true", None, 200).await;
    c.call(M::GET, "/api/v2.0/projects/t/artifacts?with_label=true", None, 200).await;
    c.call(M::GET, "/api/v2.0/projects/t/repositories/app/artifacts/v1/additions/build_history", None, 200).await;
    c.call(M::GET, "/api/v2.0/projects/t/repositories/app/artifacts/v1/additions/readme.md", None, 400).await;
    c.call(M::GET, "/api/v2.0/projects/t/repositories/app/artifacts/v1/additions/vulnerabilities", None, 200).await;
    // A scan, queued (this server runs no scan worker, so it stays queued until stopped).
    let scan = "/api/v2.0/projects/t/repositories/app/artifacts/v1/scan";
    c.call(M::POST, scan, Some(json!({"scan_type": "vulnerability"})), 202).await;
    let listed =
        c.call(M::GET, "/api/v2.0/projects/t/repositories/app/artifacts?with_scan_overview=true", None, 200).await;
    let overview = &listed[0]["scan_overview"]["application/vnd.security.vulnerability.report; version=1.1"];
    assert_eq!(overview["scan_status"], "Pending", "{listed}");
    let report = overview["report_id"].as_str().unwrap().to_string();
    c.call(M::GET, &format!("{scan}/{report}/log"), None, 200).await;
    c.call(M::POST, &format!("{scan}/stop"), Some(json!({"scan_type": "vulnerability"})), 202).await;
    c.call(M::POST, &format!("{scan}/stop"), Some(json!({"scan_type": "vulnerability"})), 400).await;
    // Scanners: the built-in one is the registration, the default and every project's.
    let builtin = "00000000-0000-4000-8000-000000000b17";
    let scanners = c.call(M::GET, "/api/v2.0/scanners", None, 200).await;
    assert_eq!((scanners[0]["uuid"].as_str(), scanners[0]["is_default"].as_bool()), (Some(builtin), Some(true)));
    c.call(M::GET, &format!("/api/v2.0/scanners/{builtin}"), None, 200).await;
    c.call(M::GET, "/api/v2.0/scanners/nope", None, 404).await;
    let metadata = c.call(M::GET, &format!("/api/v2.0/scanners/{builtin}/metadata"), None, 200).await;
    assert_eq!(metadata["capabilities"][0]["produces_mime_types"][0], REPORT_V11, "{metadata}");
    c.call(M::PATCH, &format!("/api/v2.0/scanners/{builtin}"), Some(json!({"is_default": true})), 200).await;
    c.call(M::PUT, &format!("/api/v2.0/scanners/{builtin}"), Some(json!({"name": "x", "url": "http://x"})), 403).await;
    c.call(M::DELETE, &format!("/api/v2.0/scanners/{builtin}"), None, 403).await;
    let adapter = json!({"name": "Trivy", "url": "http://trivy:8080"});
    c.call(M::POST, "/api/v2.0/scanners", Some(adapter.clone()), 400).await;
    c.call(M::POST, "/api/v2.0/scanners/ping", Some(adapter), 400).await;
    let mine = c.call(M::GET, "/api/v2.0/projects/t/scanner", None, 200).await;
    assert_eq!(mine["uuid"], builtin);
    c.call(M::PUT, "/api/v2.0/projects/t/scanner", Some(json!({"uuid": builtin})), 200).await;
    c.call(M::PUT, "/api/v2.0/projects/t/scanner", Some(json!({"uuid": "nope"})), 404).await;
    c.call(M::GET, "/api/v2.0/projects/t/scanner/candidates", None, 200).await;
    // Scan all: a run queued (and, with no worker here, left queued), its schedule, its stop.
    assert_eq!(c.call(M::GET, "/api/v2.0/system/scanAll/schedule", None, 200).await, json!({}));
    c.call(M::POST, "/api/v2.0/system/scanAll/schedule", Some(json!({"schedule": {"type": "Manual"}})), 201).await;
    c.call(M::POST, "/api/v2.0/system/scanAll/schedule", Some(json!({"schedule": {"type": "Manual"}})), 409).await;
    let stats = c.call(M::GET, "/api/v2.0/scans/all/metrics", None, 200).await;
    assert_eq!((stats["ongoing"].as_bool(), stats["trigger"].as_str()), (Some(true), Some("Manual")), "{stats}");
    assert_eq!(c.call(M::GET, "/api/v2.0/scans/schedule/metrics", None, 200).await["total"], 0);
    c.call(M::PUT, "/api/v2.0/system/scanAll/schedule", Some(json!({"schedule": {"type": "Daily"}})), 200).await;
    c.call(
        M::PUT,
        "/api/v2.0/system/scanAll/schedule",
        Some(json!({"schedule": {"type": "Custom", "cron": "x"}})),
        400,
    )
    .await;
    let daily = c.call(M::GET, "/api/v2.0/system/scanAll/schedule", None, 200).await;
    assert_eq!(daily["schedule"]["type"], "Daily", "{daily}");
    c.call(M::POST, "/api/v2.0/system/scanAll/stop", None, 202).await;
    c.call(M::POST, "/api/v2.0/system/scanAll/stop", None, 400).await;

    // The security hub: nothing is scanned here (no worker), so zeros and an empty list; a
    // query key it does not have is refused.
    let summary = c
        .call(M::GET, "/api/v2.0/security/summary?with_dangerous_cve=true&with_dangerous_artifact=true", None, 200)
        .await;
    assert_eq!(
        (summary["total_vuls"].as_i64(), summary["dangerous_cves"].as_array().map(Vec::len)),
        (Some(0), Some(0))
    );
    assert!(summary["total_artifact"].as_i64().is_some_and(|n| n > 0), "{summary}");
    let found = c.call(M::GET, "/api/v2.0/security/vul?q=cvss_score_v3%3D%5B7~10%5D&with_tag=true", None, 200).await;
    assert_eq!(found, json!([]));
    c.call(M::GET, "/api/v2.0/security/vul?q=status%3Dfixed", None, 400).await;

    // Documented refusals, each with Harbor's error body.
    let u1 = client_as("u1", "Other1234X");
    c.call_as(&u1, M::GET, "/api/v2.0/users", None, 403).await;
    c.call_as(&u1, M::GET, "/api/v2.0/security/summary", None, 403).await;
    c.call_as(&u1, M::POST, "/api/v2.0/labels", Some(json!({"name": "mine", "scope": "g"})), 403).await;
    c.call_as(&u1, M::GET, "/api/v2.0/projects/t/repositories/app/artifacts", None, 403).await;
    c.call_as(&u1, M::POST, on_artifact, Some(json!({"id": lid})), 403).await;
    c.call_as(&u1, M::PUT, "/api/v2.0/projects/t", Some(json!({"metadata": {"public": "true"}})), 403).await;
    for (method, path, body, status) in [
        (M::GET, "/api/v2.0/projects/nope", None, 404),
        (M::GET, "/api/v2.0/users/99999", None, 404),
        (M::GET, "/api/v2.0/robots/99999", None, 404),
        (M::GET, "/api/v2.0/labels/99999", None, 404),
        (M::GET, "/api/v2.0/projects/t/repositories/nope", None, 404),
        (M::GET, "/api/v2.0/projects/t/repositories/app/artifacts/nope", None, 404),
        (M::GET, "/api/v2.0/projects/conf/members/99999", None, 404),
        (M::GET, "/api/v2.0/projects/conf/metadatas/severity", None, 404),
        (M::DELETE, "/api/v2.0/projects/t/repositories/app/artifacts/v1/labels/99999", None, 404),
        (M::POST, "/api/v2.0/projects", Some(json!({"project_name": "Bad Name"})), 400),
        (M::POST, "/api/v2.0/users", Some(json!({"username": "weak", "password": "weak"})), 400),
        (M::PUT, "/api/v2.0/projects/conf", Some(json!({"metadata": {"public": "maybe"}})), 400),
        (M::GET, "/api/v2.0/projects?q=nokey%3D1", None, 400),
        (M::GET, "/api/v2.0/repositories?sort=size", None, 400),
        (M::POST, "/api/v2.0/labels", Some(json!({"name": "x", "scope": "q"})), 400),
        (M::POST, "/api/v2.0/projects", Some(json!({"project_name": "conf"})), 409),
        (M::POST, "/api/v2.0/users", Some(json!({"username": "u1", "password": "Passw0rdX"})), 409),
        (M::POST, "/api/v2.0/labels", Some(json!({"name": "conf", "scope": "g"})), 409),
        (M::POST, on_artifact, Some(json!({"id": lid})), 409),
        (M::POST, "/api/v2.0/projects/t/repositories/app/artifacts/v1/tags", Some(json!({"name": "v1"})), 409),
        (M::DELETE, "/api/v2.0/projects/t", None, 412),
    ] {
        let admin = c.s.client.clone();
        c.call_as(&admin, method, path, body, status).await;
    }

    c.call(M::DELETE, &format!("{on_artifact}/{lid}"), None, 200).await;
    c.call(M::DELETE, &format!("/api/v2.0/labels/{lid}"), None, 200).await;
    c.call(M::DELETE, "/api/v2.0/projects/t/repositories/app/artifacts/v1", None, 200).await;
    c.call(M::DELETE, "/api/v2.0/projects/t/repositories/app", None, 200).await;
    c.call(M::DELETE, &format!("/api/v2.0/users/{uid}"), None, 200).await;
    c.call(M::DELETE, "/api/v2.0/projects/conf", None, 200).await;

    // Quotas.
    let quotas = c.call(M::GET, "/api/v2.0/quotas?reference=project&sort=-used.storage", None, 200).await;
    let quota_id = quotas[0]["id"].as_i64().unwrap_or(0);
    c.call(M::GET, &format!("/api/v2.0/quotas/{quota_id}"), None, 200).await;
    c.call(M::PUT, &format!("/api/v2.0/quotas/{quota_id}"), Some(json!({"hard": {"storage": -1}})), 200).await;
    let admin = c.s.client.clone();
    c.call_as(&admin, M::PUT, &format!("/api/v2.0/quotas/{quota_id}"), Some(json!({"hard": {"storage": 0}})), 400)
        .await;
    c.call_as(&admin, M::GET, "/api/v2.0/quotas/99999", None, 404).await;

    // The system configuration.
    c.call(M::GET, "/api/v2.0/configurations", None, 200).await;
    c.call(M::PUT, "/api/v2.0/configurations", Some(json!({"banner_message": ""})), 200).await;
    c.call_as(&admin, M::PUT, "/api/v2.0/configurations", Some(json!({"token_expiration": 0})), 400).await;
    c.call(M::GET, "/api/v2.0/internalconfig", None, 200).await;

    // Immutable tag rules.
    let rules = "/api/v2.0/projects/library/immutabletagrules";
    let rule = json!({
        "disabled": false, "action": "immutable", "template": "immutable_template", "priority": 0,
        "tag_selectors": [{"kind": "doublestar", "decoration": "matches", "pattern": "release-*"}],
        "scope_selectors": {"repository": [{"kind": "doublestar", "decoration": "repoMatches", "pattern": "**"}]},
    });
    // (A second rule of the same selectors is 409, which Harbor's swagger leaves out:
    // harbor_immutable.rs checks it.)
    c.call(M::POST, rules, Some(rule), 201).await;
    let listed = c.call(M::GET, rules, None, 200).await;
    let rule_id = listed[0]["id"].as_i64().unwrap_or(0);
    c.call(M::PUT, &format!("{rules}/{rule_id}"), Some(json!({"disabled": true})), 200).await;
    let admin = c.s.client.clone();
    c.call_as(&admin, M::POST, rules, Some(json!({"tag_selectors": []})), 400).await;
    c.call(M::DELETE, &format!("{rules}/{rule_id}"), None, 200).await;
    c.call_as(&admin, M::DELETE, &format!("{rules}/{rule_id}"), None, 404).await;

    // Tag retention: a policy on `secret` (private, so anonymous calls are refused), a dry run,
    // its task and log, stopping an ended execution.
    c.s.push_image("secret/kept", "v1", &[b"retained layer"]).await;
    let secret = c.call(M::GET, "/api/v2.0/projects/secret", None, 200).await;
    let secret_id = secret["project_id"].as_i64().unwrap_or(0);
    c.call(M::GET, "/api/v2.0/retentions/metadatas", None, 200).await;
    let retention = json!({
        "algorithm": "or", "scope": {"level": "project", "ref": secret_id},
        "trigger": {"kind": "Schedule", "settings": {"cron": ""}, "references": {}},
        "rules": [{"disabled": false, "action": "retain", "template": "latestPushedK", "params": {"latestPushedK": 1},
            "tag_selectors": [{"kind": "doublestar", "decoration": "matches", "pattern": "**", "extras": "{\"untagged\":true}"}],
            "scope_selectors": {"repository": [{"kind": "doublestar", "decoration": "repoMatches", "pattern": "**"}]}}],
    });
    c.call(M::POST, "/api/v2.0/retentions", Some(retention.clone()), 201).await;
    let admin = c.s.client.clone();
    c.call_as(&admin, M::POST, "/api/v2.0/retentions", Some(json!({"rules": [], "scope": {"level": "x"}})), 400).await;
    let secret = c.call(M::GET, "/api/v2.0/projects/secret", None, 200).await;
    let policy_id: i64 = secret["metadata"]["retention_id"].as_str().and_then(|v| v.parse().ok()).unwrap_or(0);
    let policy = format!("/api/v2.0/retentions/{policy_id}");
    c.call(M::GET, &policy, None, 200).await;
    c.call(M::PUT, &policy, Some(retention), 200).await;
    c.call(M::POST, &format!("{policy}/executions"), Some(json!({"dry_run": true})), 201).await;
    let executions = c.call(M::GET, &format!("{policy}/executions"), None, 200).await;
    let execution = executions[0]["id"].as_i64().unwrap_or(0);
    let done = c.s.wait_ended_retention(policy_id, execution).await;
    assert_eq!(done, "Success");
    let tasks = c.call(M::GET, &format!("{policy}/executions/{execution}/tasks"), None, 200).await;
    let task = tasks[0]["id"].as_i64().unwrap_or(0);
    c.call(M::GET, &format!("{policy}/executions/{execution}/tasks/{task}"), None, 200).await;
    c.call(M::PATCH, &format!("{policy}/executions/{execution}"), Some(json!({"action": "stop"})), 200).await;
    c.call(M::DELETE, &policy, None, 200).await;

    // Icons: the built-in one of an image, an unknown one, a bad digest.
    c.s.push_image("library/pub", "v1", &[b"public layer"]).await;
    let artifact = c.call(M::GET, "/api/v2.0/projects/library/repositories/pub/artifacts/v1", None, 200).await;
    let icon = artifact["icon"].as_str().unwrap_or("none").to_string();
    c.call(M::GET, &format!("/api/v2.0/icons/{icon}"), None, 200).await;
    let admin = c.s.client.clone();
    c.call_as(&admin, M::GET, &format!("/api/v2.0/icons/sha256:{}", "0".repeat(64)), None, 404).await;
    c.call_as(&admin, M::GET, "/api/v2.0/icons/nope", None, 400).await;

    // The audit log and its purge.
    c.call(M::GET, "/api/v2.0/auditlog-exts?page_size=5", None, 200).await;
    c.call(M::GET, "/api/v2.0/auditlog-exts/events", None, 200).await;
    c.call(M::GET, "/api/v2.0/projects/library/auditlog-exts", None, 200).await;
    c.call(M::GET, "/api/v2.0/audit-logs", None, 200).await;
    c.call(M::GET, "/api/v2.0/projects/library/logs", None, 200).await;
    let manual = json!({"schedule": {"type": "Manual"},
        "parameters": {"audit_retention_hour": 0, "include_event_types": "create_project", "dry_run": true}});
    c.call(M::POST, "/api/v2.0/system/purgeaudit/schedule", Some(manual), 201).await;
    let runs = c.call(M::GET, "/api/v2.0/system/purgeaudit", None, 200).await;
    let run = runs[0]["id"].as_i64().unwrap();
    c.call(M::GET, &format!("/api/v2.0/system/purgeaudit/{run}"), None, 200).await;
    c.call(M::GET, &format!("/api/v2.0/system/purgeaudit/{run}/log"), None, 200).await;
    c.call(M::PUT, &format!("/api/v2.0/system/purgeaudit/{run}"), None, 200).await;
    let hourly = json!({"schedule": {"type": "Hourly", "cron": "0 0 * * * *"},
        "parameters": {"audit_retention_hour": 168, "include_event_types": "create_project", "dry_run": true}});
    c.call(M::PUT, "/api/v2.0/system/purgeaudit/schedule", Some(hourly), 200).await;
    c.call(M::GET, "/api/v2.0/system/purgeaudit/schedule", None, 200).await;

    // Garbage collection.
    let manual = json!({"schedule": {"type": "Manual"}, "parameters": {"dry_run": true}});
    c.call(M::POST, "/api/v2.0/system/gc/schedule", Some(manual), 201).await;
    let runs = c.call(M::GET, "/api/v2.0/system/gc", None, 200).await;
    let run = runs[0]["id"].as_i64().unwrap();
    c.call(M::GET, &format!("/api/v2.0/system/gc/{run}"), None, 200).await;
    c.call(M::GET, &format!("/api/v2.0/system/gc/{run}/log"), None, 200).await;
    c.call(M::PUT, &format!("/api/v2.0/system/gc/{run}"), None, 200).await;
    let weekly = json!({"schedule": {"type": "Weekly", "cron": "0 0 0 * * 0"}, "parameters": {"workers": 3}});
    c.call(M::POST, "/api/v2.0/system/gc/schedule", Some(weekly.clone()), 201).await;
    c.call(M::PUT, "/api/v2.0/system/gc/schedule", Some(weekly), 200).await;
    c.call(M::GET, "/api/v2.0/system/gc/schedule", None, 200).await;

    // The job service's dashboard and the schedules.
    let pools = c.call(M::GET, "/api/v2.0/jobservice/pools", None, 200).await;
    let pool = pools[0]["worker_pool_id"].as_str().unwrap().to_string();
    c.call(M::GET, &format!("/api/v2.0/jobservice/pools/{pool}/workers"), None, 200).await;
    c.call(M::GET, "/api/v2.0/jobservice/pools/nope/workers", None, 404).await;
    c.call(M::GET, &format!("/api/v2.0/jobservice/jobs/{run}/log"), None, 200).await;
    c.call(M::PUT, &format!("/api/v2.0/jobservice/jobs/{run}"), Some(json!({})), 200).await;
    c.call(M::PUT, "/api/v2.0/jobservice/jobs/999999", Some(json!({})), 404).await;
    c.call(M::PUT, "/api/v2.0/jobservice/queues/all", Some(json!({"action": "pause"})), 200).await;
    c.call(M::GET, "/api/v2.0/jobservice/queues", None, 200).await;
    c.call(M::PUT, "/api/v2.0/jobservice/queues/all", Some(json!({"action": "resume"})), 200).await;
    c.call(M::PUT, "/api/v2.0/jobservice/queues/all", Some(json!({"action": "explode"})), 422).await;
    c.call(M::GET, "/api/v2.0/schedules", None, 200).await;
    c.call(M::GET, "/api/v2.0/schedules/all/paused", None, 200).await;
    c.call(M::GET, "/api/v2.0/schedules/GARBAGE_COLLECTION/paused", None, 400).await;

    assert!(c.errors.is_empty(), "swagger conformance:\n{}", c.errors.join("\n"));

    // Every operation the router serves (anything but the answer for a path it does not
    // serve, or 405 for a method it does not) was exercised above.
    let routed = routed_operations(&c).await;
    let unexercised: Vec<_> = routed.difference(&c.served).collect();
    assert!(unexercised.is_empty(), "served but not checked against the swagger: {unexercised:?}");

    // docs/harbor-api.md states how many operations are served; it must match this test.
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/harbor-api.md")).unwrap();
    let claimed = format!("**{}** of them so far", c.served.len());
    assert!(doc.contains(&claimed), "docs/harbor-api.md should say {claimed:?}; this test exercised {:?}", c.served);
    let total: usize = c.spec["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|ops| ops.as_object().unwrap().keys().filter(|k| *k != "parameters").count())
        .sum();
    assert_eq!(total, 203, "the swagger's operation count");
}

/// The operations of the swagger the router answers: each is sent anonymously with every path
/// parameter `1` (nothing anonymous can change anything), and counts unless it gets the answer
/// for a path Berth does not serve or 405.
async fn routed_operations(c: &Checker) -> std::collections::BTreeSet<String> {
    let mut routed = std::collections::BTreeSet::new();
    for (path, ops) in c.spec["paths"].as_object().unwrap() {
        let concrete: String = with_parameters_set(path);
        for (method, op) in ops.as_object().unwrap() {
            let Ok(m) = method.to_uppercase().parse::<Method>() else { continue };
            let resp = c.s.anon.request(m.clone(), c.s.url(&format!("/api/v2.0{concrete}"))).send().await.unwrap();
            let status = resp.status().as_u16();
            let text = resp.text().await.unwrap();
            if status == 405 || (status == 404 && text.contains("is not an operation this registry serves")) {
                continue;
            }
            routed.insert(op["operationId"].as_str().unwrap().to_string());
        }
    }
    routed
}

/// `path` with each `{parameter}` replaced by `1`.
fn with_parameters_set(path: &str) -> String {
    let mut out = String::new();
    let mut in_param = false;
    for ch in path.chars() {
        match ch {
            '{' => {
                in_param = true;
                out.push('1');
            }
            '}' => in_param = false,
            c if !in_param => out.push(c),
            _ => {}
        }
    }
    out
}

#[test]
fn the_validator_catches_wrong_shapes() {
    let spec = swagger();
    let project = json!({"$ref": "#/definitions/Project"});
    let mut errors = Vec::new();
    validate(
        &spec,
        &project,
        &json!({"project_id": 1, "name": "p", "metadata": {"public": "true"}}),
        "ok",
        &mut errors,
    );
    assert!(errors.is_empty(), "{errors:?}");
    for bad in [json!({"project_id": "1"}), json!({"name": 5}), json!({"metadata": {"public": true}}), json!([1])] {
        let mut errors = Vec::new();
        validate(&spec, &project, &bad, "bad", &mut errors);
        assert!(!errors.is_empty(), "{bad} should not validate");
    }
    assert_eq!(operation(&spec, "GET", "/api/v2.0/projects/x/members/3").map(|o| o.0), Some("getProjectMember"));
    assert_eq!(operation(&spec, "GET", "/api/v2.0/nothing/here"), None);
}
