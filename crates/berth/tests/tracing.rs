//! OpenTelemetry traces from the binary to an OTLP/HTTP receiver on loopback (the test's own,
//! decoding the protobuf requests with the OTLP definitions): a request's span, its database
//! calls and storage calls as its descendants, under the configured resource; none when the
//! sample rate is 0; over HTTPS to a collector whose CA `trace.otel.ca_file` names.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message as _;
use sha2::Digest as _;

#[derive(Clone, Debug)]
struct ReceivedSpan {
    name: String,
    trace_id: Vec<u8>,
    span_id: Vec<u8>,
    parent_span_id: Vec<u8>,
    attributes: HashMap<String, String>,
    namespace: String,
}

type Received = Arc<Mutex<Vec<ReceivedSpan>>>;

async fn receiver() -> (String, Received) {
    let (app, spans) = receiver_app();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, spans)
}

/// The same receiver behind TLS, with `dir`'s `server.crt` (for `localhost`) and key.
async fn tls_receiver(dir: &std::path::Path) -> (String, Received) {
    use rustls::pki_types::pem::PemObject as _;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let certs: Vec<_> =
        rustls::pki_types::CertificateDer::pem_file_iter(dir.join("server.crt")).unwrap().map(Result::unwrap).collect();
    let key = rustls::pki_types::PrivateKeyDer::from_pem_file(dir.join("server.key")).unwrap();
    let config = rustls::ServerConfig::builder().with_no_client_auth().with_single_cert(certs, key).unwrap();
    let (app, spans) = receiver_app();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let limits = berth_api::ServerLimits::default();
    tokio::spawn(berth_api::serve_with(listener, app, limits, Some(Arc::new(config)), std::future::pending()));
    (format!("localhost:{port}"), spans)
}

fn receiver_app() -> (axum::Router, Received) {
    let spans: Received = Arc::default();
    let store = spans.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |body: axum::body::Bytes| {
            let store = store.clone();
            async move {
                let req = ExportTraceServiceRequest::decode(body).expect("OTLP protobuf");
                for rs in req.resource_spans {
                    let namespace = rs
                        .resource
                        .iter()
                        .flat_map(|r| r.attributes.iter())
                        .find(|a| a.key == "service.namespace")
                        .map(|a| format!("{:?}", a.value))
                        .unwrap_or_default();
                    for ss in rs.scope_spans {
                        for s in ss.spans {
                            let attributes = s
                                .attributes
                                .iter()
                                .map(|a| {
                                    use opentelemetry_proto::tonic::common::v1::any_value::Value;
                                    let v = match a.value.as_ref().and_then(|v| v.value.as_ref()) {
                                        Some(Value::StringValue(s)) => s.clone(),
                                        Some(Value::IntValue(i)) => i.to_string(),
                                        other => format!("{other:?}"),
                                    };
                                    (a.key.clone(), v)
                                })
                                .collect();
                            store.lock().unwrap().push(ReceivedSpan {
                                name: s.name,
                                trace_id: s.trace_id,
                                span_id: s.span_id,
                                parent_span_id: s.parent_span_id,
                                attributes,
                                namespace: namespace.clone(),
                            });
                        }
                    }
                }
                ""
            }
        }),
    );
    (app, spans)
}

fn start(dir: &std::path::Path, collector: &str, namespace: &str, rate: &str) -> Berth {
    start_with(dir, collector, namespace, rate, &[])
}

fn start_with(dir: &std::path::Path, collector: &str, namespace: &str, rate: &str, more: &[(&str, &str)]) -> Berth {
    let mut env = vec![
        ("BERTH_ADMIN_PASSWORD", ADMIN_PASSWORD),
        ("BERTH_TRACE__ENABLED", "true"),
        ("BERTH_TRACE__SAMPLE_RATE", rate),
        ("BERTH_TRACE__NAMESPACE", namespace),
        ("BERTH_TRACE__OTEL__ENDPOINT", collector),
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
    ];
    env.extend_from_slice(more);
    Berth::start_with(dir, &env)
}

/// Internal TLS to the collector: over HTTPS with `trace.otel.ca_file` the spans arrive; with
/// only the public roots the collector's certificate is refused and none do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_reach_a_collector_over_tls_trusting_its_ca() {
    if !have("openssl") {
        return;
    }
    let certs = tempfile::tempdir().unwrap();
    make_ca(certs.path(), "ca");
    make_server_certificate(certs.path(), "ca");
    let (collector, spans) = tls_receiver(certs.path()).await;
    let ca = certs.path().join("ca.crt").to_string_lossy().into_owned();
    let client = admin_client();
    for (namespace, more) in [
        ("public-roots", vec![("BERTH_TRACE__OTEL__INSECURE", "false")]),
        ("its-ca", vec![("BERTH_TRACE__OTEL__INSECURE", "false"), ("BERTH_TRACE__OTEL__CA_FILE", ca.as_str())]),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let berth = start_with(dir.path(), &collector, namespace, "1", &more);
        for _ in 0..3 {
            client.get(berth.url("/api/v2.0/projects")).send().await.unwrap();
        }
        let mut arrived = false;
        for _ in 0..30 {
            arrived = spans.lock().unwrap().iter().any(|s| s.namespace.contains(namespace));
            if arrived {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(arrived, namespace == "its-ca", "spans of {namespace:?}");
    }
}

/// Whether `span` descends from `ancestor` among `all`.
fn descends(span: &ReceivedSpan, ancestor: &ReceivedSpan, all: &[ReceivedSpan]) -> bool {
    let mut parent = span.parent_span_id.clone();
    for _ in 0..16 {
        if parent.is_empty() {
            return false;
        }
        if parent == ancestor.span_id {
            return true;
        }
        match all.iter().find(|s| s.span_id == parent) {
            Some(p) => parent = p.parent_span_id.clone(),
            None => return false,
        }
    }
    false
}

#[tokio::test]
async fn requests_database_and_storage_calls_are_spans_of_one_trace() {
    let (collector, spans) = receiver().await;
    let dir = tempfile::tempdir().unwrap();
    let berth = start(dir.path(), &collector, "traced", "1");
    let client = admin_client();
    let resp = client
        .post(berth.url("/api/v2.0/projects"))
        .header("x-request-id", "trace-req-1")
        .json(&serde_json::json!({"project_name": "traced"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let blob = b"traced blob".to_vec();
    let digest =
        format!("sha256:{}", sha2::Sha256::digest(&blob).iter().map(|b| format!("{b:02x}")).collect::<String>());
    let resp = client
        .post(berth.url(&format!("/v2/traced/app/blobs/uploads/?digest={digest}")))
        .body(blob)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);

    let mut all = Vec::new();
    for _ in 0..100 {
        all = spans.lock().unwrap().clone();
        if all.iter().any(|s| s.name == "PutContent") && all.iter().any(|s| s.name == "create_project") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let names: Vec<&str> = all.iter().map(|s| s.name.as_str()).collect();
    let create = all.iter().find(|s| s.name == "POST createProject").unwrap_or_else(|| panic!("{names:?}"));
    assert_eq!(create.attributes.get("id").map(String::as_str), Some("trace-req-1"));
    assert_eq!(create.attributes.get("status").map(String::as_str), Some("201"));
    assert_eq!(create.attributes.get("user").map(String::as_str), Some("admin"));
    assert!(create.namespace.contains("traced"), "{}", create.namespace);
    let db = all.iter().find(|s| s.name == "create_project").unwrap();
    assert_eq!(db.trace_id, create.trace_id);
    assert!(descends(db, create, &all), "the database call is within the request");

    let upload = all.iter().find(|s| s.name == "POST blob_upload").unwrap_or_else(|| panic!("{names:?}"));
    assert_eq!(upload.attributes.get("repository").map(String::as_str), Some("traced/app"));
    let put = all.iter().find(|s| s.name == "PutContent").unwrap();
    assert_eq!(put.attributes.get("driver").map(String::as_str), Some("filesystem"));
    assert!(descends(put, upload, &all), "the storage call is within the upload: {names:?}");
    assert_ne!(upload.trace_id, create.trace_id, "a trace per request");
    drop(berth);

    // Sampling nothing sends nothing.
    let dir = tempfile::tempdir().unwrap();
    let berth = start(dir.path(), &collector, "unsampled", "0");
    for _ in 0..5 {
        client.get(berth.url("/api/v2.0/projects")).send().await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(!spans.lock().unwrap().iter().any(|s| s.namespace.contains("unsampled")));
}
