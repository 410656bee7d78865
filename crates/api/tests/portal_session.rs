//! The portal's login flow: a session cookie, the CSRF token mutating calls must echo, logout.

mod common;

use common::*;
use reqwest::StatusCode;

#[tokio::test]
async fn session_cookie_with_csrf_then_logout() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let login = |password: &'static str| {
        s.anon
            .post(s.url("/c/login"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("principal=admin&password={password}"))
            .send()
    };
    assert_eq!(login("Wrong12345").await.unwrap().status(), StatusCode::UNAUTHORIZED);
    let resp = login(ADMIN_PASSWORD).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let csrf = header(&resp, "x-harbor-csrf-token").to_string();
    assert_eq!(csrf.len(), 32);
    let cookies: Vec<String> =
        resp.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_string()).collect();
    let sid_cookie = cookies.iter().find(|c| c.starts_with("sid=")).expect("session cookie");
    assert!(sid_cookie.contains("HttpOnly"), "{sid_cookie}");
    let sid = sid_cookie.split(';').next().unwrap().to_string();

    let with_cookie = |req: reqwest::RequestBuilder| req.header("cookie", format!("{sid}; other=1"));
    let me: serde_json::Value =
        with_cookie(s.anon.get(s.url("/api/v2.0/users/current"))).send().await.unwrap().json().await.unwrap();
    assert_eq!(me["username"], "admin");

    // Mutating calls need the CSRF header, and the right one.
    let create = |name: &str| s.anon.post(s.url("/api/v2.0/projects")).json(&serde_json::json!({"project_name": name}));
    assert_eq!(with_cookie(create("a")).send().await.unwrap().status(), StatusCode::FORBIDDEN);
    let wrong = with_cookie(create("a")).header("x-harbor-csrf-token", "x".repeat(32)).send().await.unwrap();
    assert_eq!(wrong.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        s.anon.head(s.url("/api/v2.0/projects?project_name=a")).send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    let ok = with_cookie(create("a")).header("x-harbor-csrf-token", &csrf).send().await.unwrap();
    assert_eq!(ok.status(), StatusCode::CREATED);

    // A made-up session is no session.
    let forged = s.anon.get(s.url("/api/v2.0/users/current")).header("cookie", "sid=forged").send().await.unwrap();
    assert_eq!(forged.status(), StatusCode::UNAUTHORIZED);

    let out = with_cookie(s.anon.get(s.url("/c/log_out"))).send().await.unwrap();
    assert_eq!(out.status(), StatusCode::OK);
    assert!(header(&out, "set-cookie").contains("Max-Age=0"));
    let after = with_cookie(s.anon.get(s.url("/api/v2.0/users/current"))).send().await.unwrap();
    assert_eq!(after.status(), StatusCode::UNAUTHORIZED);
}
