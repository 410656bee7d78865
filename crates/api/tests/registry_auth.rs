//! Harbor's registry authentication on `/v2`: the Bearer challenge, `/service/token`, Basic
//! credentials, public and private projects, roles, and tokens that open only what they name.

mod common;

use berth_auth::token::TokenIssuer;
use common::*;
use reqwest::StatusCode;

async fn server() -> (tempfile::TempDir, TestServer) {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    (dir, s)
}

/// Creates a user and, when `role` is given, makes them a member of `t`.
async fn user_in_t(s: &TestServer, name: &str, role: Option<i64>) -> reqwest::Client {
    match role {
        Some(role) => s.member("t", name, role).await,
        None => s.user(name).await,
    }
}

async fn token(s: &TestServer, client: &reqwest::Client, scopes: &[&str]) -> (StatusCode, serde_json::Value) {
    let mut url = format!("{}/service/token?service=harbor-registry", s.base);
    for scope in scopes {
        url.push_str(&format!("&scope={scope}"));
    }
    let resp = client.get(url).send().await.unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or(serde_json::Value::Null))
}

fn granted(body: &serde_json::Value) -> Vec<serde_json::Value> {
    let token = body["token"].as_str().unwrap();
    let payload = token.split('.').nth(1).unwrap();
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap();
    let claims: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    claims["access"].as_array().unwrap().clone()
}

fn bearer(token: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("authorization", format!("Bearer {token}").parse().unwrap());
    common::http_builder().default_headers(headers).build().unwrap()
}

#[tokio::test]
async fn anonymous_callers_are_challenged_except_for_public_pulls() {
    let (_d, s) = server().await;
    let resp = s.anon.get(s.url("/v2/")).send().await.unwrap();
    let challenge = header(&resp, "www-authenticate").to_string();
    assert_eq!(challenge, format!("Bearer realm=\"{}/service/token\",service=\"harbor-registry\"", s.base));
    assert_error(resp, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;

    s.push_image("t/private", "v1", &[b"p"]).await;
    s.push_image("library/app", "v1", &[b"l"]).await;
    let resp = s.anon.get(s.url("/v2/t/private/manifests/v1")).send().await.unwrap();
    assert!(header(&resp, "www-authenticate").ends_with(",scope=\"repository:t/private:pull\""));
    assert_error(resp, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;
    // `library` is public: anonymous pull works, anonymous push does not.
    let resp = s.anon.get(s.url("/v2/library/app/manifests/v1")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = s.anon.post(s.url("/v2/library/app/blobs/uploads/")).send().await.unwrap();
    assert!(header(&resp, "www-authenticate").ends_with(",scope=\"repository:library/app:pull,push\""));
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);

    // The challenge of a mount names the source's pull scope too, so that a token client
    // asks for both and can mount instead of uploading.
    let resp =
        s.anon.post(s.url("/v2/library/copy/blobs/uploads/?mount=sha256:00&from=library/app")).send().await.unwrap();
    assert!(
        header(&resp, "www-authenticate")
            .ends_with(",scope=\"repository:library/copy:pull,push repository:library/app:pull\""),
        "{}",
        header(&resp, "www-authenticate")
    );

    // Wrong credentials are refused, not treated as anonymous.
    let resp = client_as("admin", "Wrong12345").get(s.url("/v2/library/app/manifests/v1")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    // A project that does not exist.
    let resp = s.client.post(s.url("/v2/nosuch/app/blobs/uploads/")).send().await.unwrap();
    assert_error(resp, StatusCode::NOT_FOUND, "NAME_UNKNOWN").await;
    let resp = s.client.post(s.url("/v2/noproject/blobs/uploads/")).send().await.unwrap();
    assert_error(resp, StatusCode::BAD_REQUEST, "NAME_INVALID").await;
}

#[tokio::test]
async fn roles_decide_with_basic_credentials() {
    let (_d, s) = server().await;
    let (digest, _) = s.push_image("t/app", "v1", &[b"layer"]).await;
    let developer = user_in_t(&s, "dev", Some(2)).await;
    let guest = user_in_t(&s, "guest", Some(3)).await;
    let outsider = user_in_t(&s, "outsider", None).await;

    for c in [&developer, &guest] {
        assert_eq!(c.get(s.url("/v2/t/app/manifests/v1")).send().await.unwrap().status(), StatusCode::OK);
    }
    let resp = outsider.get(s.url("/v2/t/app/manifests/v1")).send().await.unwrap();
    assert_error(resp, StatusCode::FORBIDDEN, "DENIED").await;
    assert_eq!(developer.post(s.url("/v2/t/app/blobs/uploads/")).send().await.unwrap().status(), StatusCode::ACCEPTED);
    let resp = guest.post(s.url("/v2/t/app/blobs/uploads/")).send().await.unwrap();
    assert_error(resp, StatusCode::FORBIDDEN, "DENIED").await;
    // Deleting needs maintainer or more.
    let resp = developer.delete(s.url(&format!("/v2/t/app/manifests/{digest}"))).send().await.unwrap();
    assert_error(resp, StatusCode::FORBIDDEN, "DENIED").await;
    assert_eq!(s.client.head(s.url("/v2/t/app/manifests/v1")).send().await.unwrap().status(), StatusCode::OK);

    // The catalog shows each caller what they can see.
    s.push_image("library/pub", "v1", &[b"l"]).await;
    let names = |c: reqwest::Client| {
        let url = s.url("/v2/_catalog");
        async move {
            let v: serde_json::Value = c.get(url).send().await.unwrap().json().await.unwrap();
            v["repositories"].clone()
        }
    };
    assert_eq!(names(s.client.clone()).await, serde_json::json!(["library/pub", "t/app"]));
    assert_eq!(names(developer.clone()).await, serde_json::json!(["library/pub", "t/app"]));
    assert_eq!(names(outsider.clone()).await, serde_json::json!(["library/pub"]));
}

#[tokio::test]
async fn tokens_grant_what_the_caller_may_do_and_nothing_more() {
    let (_d, s) = server().await;
    s.push_image("t/app", "v1", &[b"layer"]).await;
    let developer = user_in_t(&s, "dev", Some(2)).await;
    let guest = user_in_t(&s, "guest", Some(3)).await;
    let scope = "repository:t/app:pull,push,delete";

    let (status, body) = token(&s, &s.client, &[scope]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["expires_in"], 1800);
    assert!(body["issued_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(body["access_token"], body["token"]);
    assert_eq!(granted(&body)[0]["actions"], serde_json::json!(["pull", "push", "delete"]));
    let (_, body) = token(&s, &developer, &[scope]).await;
    assert_eq!(granted(&body)[0]["actions"], serde_json::json!(["pull", "push"]));
    let (_, body) = token(&s, &guest, &[scope]).await;
    assert_eq!(granted(&body)[0]["actions"], serde_json::json!(["pull"]));
    // As Harbor: everything the caller may do, whatever was asked (oras-py relies on it).
    let (_, body) = token(&s, &s.client, &["repository:t/app:pull"]).await;
    assert_eq!(granted(&body)[0]["actions"], serde_json::json!(["pull", "push", "delete"]));
    // Anonymous: public projects only; no scope at all is refused.
    let (_, body) = token(&s, &s.anon, &["repository:library/x:pull,push", "repository:t/app:pull"]).await;
    assert_eq!(granted(&body)[0]["actions"], serde_json::json!(["pull"]));
    assert_eq!(granted(&body)[1]["actions"], serde_json::json!([]));
    assert_eq!(token(&s, &s.anon, &[]).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(token(&s, &client_as("admin", "Wrong12345"), &[scope]).await.0, StatusCode::UNAUTHORIZED);
    let resp = s.client.get(s.url("/service/token?service=other&scope=repository:t/app:pull")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    // The catalog scope is for administrators.
    let (_, body) = token(&s, &developer, &["registry:catalog:*"]).await;
    assert_eq!(granted(&body)[0]["actions"], serde_json::json!([]));

    // A token opens the repository it names, for the actions it grants, and nothing else.
    let (_, body) = token(&s, &guest, &["repository:t/app:pull"]).await;
    let with_token = bearer(body["token"].as_str().unwrap());
    assert_eq!(with_token.get(s.url("/v2/t/app/manifests/v1")).send().await.unwrap().status(), StatusCode::OK);
    assert_eq!(with_token.get(s.url("/v2/t/other/tags/list")).send().await.unwrap().status(), StatusCode::UNAUTHORIZED);
    // A guest may not push, whatever the token: 403 with Harbor's message and a challenge that
    // says a new token would not help.
    let resp = with_token.post(s.url("/v2/t/app/blobs/uploads/")).send().await.unwrap();
    let challenge = header(&resp, "www-authenticate").to_string();
    assert!(challenge.contains("scope=\"repository:t/app:pull,push\""), "{challenge}");
    assert!(challenge.ends_with(",error=\"insufficient_scope\""), "{challenge}");
    let error = assert_error(resp, StatusCode::FORBIDDEN, "DENIED").await;
    assert_eq!(error["errors"][0]["message"], "unauthorized to access repository: t/app, action: push");
    let (_, body) = token(&s, &developer, &["repository:t/app:pull"]).await;
    let dev_token = bearer(body["token"].as_str().unwrap());
    assert_eq!(dev_token.post(s.url("/v2/t/app/blobs/uploads/")).send().await.unwrap().status(), StatusCode::ACCEPTED);
    let resp = dev_token.delete(s.url("/v2/t/app/manifests/v1")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN, "a developer may not delete");
    // A token that lacks what its subject may do asks for a new one: 401.
    let (_, body) = token(&s, &s.client, &["repository:t/app:pull"]).await;
    let admin_token = bearer(body["token"].as_str().unwrap());
    let resp = admin_token.post(s.url("/v2/t/other/blobs/uploads/")).send().await.unwrap();
    assert!(!header(&resp, "www-authenticate").contains("error="));
    assert_error(resp, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;
    // A token caller is told that the project does not exist.
    let resp = admin_token.post(s.url("/v2/nosuch/app/blobs/uploads/")).send().await.unwrap();
    let error = assert_error(resp, StatusCode::NOT_FOUND, "NAME_UNKNOWN").await;
    assert_eq!(error["errors"][0]["message"], "project nosuch not found");
    // A tampered token is refused.
    let tampered = format!("{}x", body["token"].as_str().unwrap());
    assert_eq!(
        bearer(&tampered).get(s.url("/v2/t/app/manifests/v1")).send().await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn an_expired_token_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    s.push_image("t/app", "v1", &[b"layer"]).await;
    // Same key as the server's, but a token that lives zero seconds.
    let short = TokenIssuer::from_pem(&token_key(dir.path()), std::time::Duration::from_secs(0)).unwrap();
    let access = vec![berth_auth::token::AccessEntry {
        kind: "repository".into(),
        name: "t/app".into(),
        actions: vec!["pull".into()],
    }];
    let admin = s.db.user_by_name("admin").await.unwrap().unwrap();
    let against = berth_auth::token::IssuedAgainst {
        id: admin.id,
        robot: false,
        credential: berth_core::identity::credential_version(&admin.password_hash),
        projects: [("t".to_string(), s.db.project_by_name("t").await.unwrap().unwrap().id)].into(),
    };
    let t = short.issue("admin", access, against).unwrap();
    let c = bearer(&t.token);
    assert_eq!(
        c.get(s.url("/v2/t/app/manifests/v1")).send().await.unwrap().status(),
        StatusCode::OK,
        "valid within the leeway"
    );
    tokio::time::sleep(std::time::Duration::from_secs(7)).await;
    assert_eq!(c.get(s.url("/v2/t/app/manifests/v1")).send().await.unwrap().status(), StatusCode::UNAUTHORIZED);
}

/// Past its free failures the guessing client waits: 429 `TOOMANYREQUESTS` with `Retry-After`
/// on `/v2` and at the token service, for this account even with the right password; another
/// account from the same client is not held up (until the client's own allowance is spent).
#[tokio::test]
async fn repeated_failures_make_the_client_wait() {
    let (_d, s) = server().await;
    let other = user_in_t(&s, "dev", Some(2)).await;
    let wrong = client_as("admin", "Guess12345");
    for _ in 0..6 {
        assert_eq!(wrong.get(s.url("/v2/")).send().await.unwrap().status(), StatusCode::UNAUTHORIZED);
    }
    let resp = s.client.get(s.url("/v2/")).send().await.unwrap();
    assert!(resp.headers().get("retry-after").is_some());
    assert_error(resp, StatusCode::TOO_MANY_REQUESTS, "TOOMANYREQUESTS").await;
    assert_eq!(token(&s, &s.client, &["repository:t/app:pull"]).await.0, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(other.get(s.url("/v2/")).send().await.unwrap().status(), StatusCode::OK);
}
