//! The permission matrix: every kind of caller against every action, on `/v2` and
//! `/api/v2.0`, asserting both what is allowed and what is refused (Harbor's roles,
//! harbor.md 2.1).

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

#[derive(Clone, Copy, Debug, PartialEq)]
enum Caller {
    Anonymous,
    ProjectAdmin,
    Developer,
    Guest,
    Maintainer,
    LimitedGuest,
    NonMember,
    SystemAdmin,
    ProjectRobot,
    SystemRobot,
}

use Caller::*;

const CALLERS: [Caller; 10] = [
    Anonymous,
    ProjectAdmin,
    Developer,
    Guest,
    Maintainer,
    LimitedGuest,
    NonMember,
    SystemAdmin,
    ProjectRobot,
    SystemRobot,
];

/// The expected outcome of each action, per caller (in the order of `CALLERS`).
const MATRIX: &[(&str, [bool; 10])] = &[
    //                    anon  padm   dev   guest maint limit  non   sys   prob  srob
    ("pull", [false, true, true, true, true, true, false, true, true, true]),
    ("push", [false, true, true, false, true, false, false, true, true, false]),
    ("v2 delete manifest", [false, true, false, false, true, false, false, true, false, false]),
    ("api delete artifact", [false, true, false, false, true, false, false, true, false, false]),
    ("api delete tag", [false, true, false, false, true, false, false, true, false, false]),
    ("add tag", [false, true, true, false, true, false, false, true, false, false]),
    ("create member", [false, true, false, false, false, false, false, true, false, false]),
    ("delete member", [false, true, false, false, false, false, false, true, false, false]),
    ("list members", [false, true, true, true, true, false, false, true, false, false]),
    ("create robot", [false, true, false, false, false, false, false, true, false, false]),
    ("update project metadata", [false, true, false, false, false, false, false, true, false, false]),
    ("delete project", [false, true, false, false, false, false, false, true, false, false]),
    ("list projects shows it", [false, true, true, true, true, true, false, true, false, false]),
    ("read repositories", [false, true, true, true, true, true, false, true, false, false]),
    ("create global label", [false, false, false, false, false, false, false, true, false, false]),
    ("create project label", [false, true, false, false, true, false, false, true, false, false]),
    ("list project labels", [false, true, true, true, true, false, false, true, false, false]),
    ("label an artifact", [false, true, true, false, true, false, false, true, false, false]),
];

struct World {
    s: TestServer,
    clients: Vec<(Caller, reqwest::Client)>,
    n: std::sync::atomic::AtomicUsize,
}

impl World {
    async fn new(dir: &std::path::Path) -> World {
        let s = TestServer::start(dir).await;
        let admin = s.client.clone();
        assert_eq!(
            admin.post(s.url("/api/v2.0/projects")).json(&json!({"project_name": "m"})).send().await.unwrap().status(),
            StatusCode::CREATED
        );
        let mut clients = vec![(Anonymous, s.anon.clone()), (SystemAdmin, admin.clone())];
        for (caller, name, role) in [
            (ProjectAdmin, "padm", Some(1)),
            (Developer, "dev", Some(2)),
            (Guest, "guest", Some(3)),
            (Maintainer, "maint", Some(4)),
            (LimitedGuest, "limited", Some(5)),
            (NonMember, "outsider", None),
        ] {
            admin
                .post(s.url("/api/v2.0/users"))
                .json(&json!({"username": name, "password": "Passw0rdX"}))
                .send()
                .await
                .unwrap();
            if let Some(role) = role {
                let resp = admin
                    .post(s.url("/api/v2.0/projects/m/members"))
                    .json(&json!({"role_id": role, "member_user": {"username": name}}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(resp.status(), StatusCode::CREATED);
            }
            clients.push((caller, client_as(name, "Passw0rdX")));
        }
        let robot = |body: Value| {
            let admin = admin.clone();
            let url = s.url("/api/v2.0/robots");
            async move {
                let created: Value = admin.post(url).json(&body).send().await.unwrap().json().await.unwrap();
                client_as(created["name"].as_str().unwrap(), created["secret"].as_str().unwrap())
            }
        };
        let access = |actions: &[&str]| {
            actions.iter().map(|a| json!({"resource": "repository", "action": a})).collect::<Vec<_>>()
        };
        let project_robot = robot(json!({"name": "ci", "level": "project", "duration": -1,
            "permissions": [{"kind": "project", "namespace": "m", "access": access(&["pull", "push"])}]}))
        .await;
        let system_robot = robot(json!({"name": "reader", "level": "system", "duration": -1,
            "permissions": [{"kind": "project", "namespace": "*", "access": access(&["pull"])}]}))
        .await;
        clients.push((ProjectRobot, project_robot));
        clients.push((SystemRobot, system_robot));
        World { s, clients, n: std::sync::atomic::AtomicUsize::new(0) }
    }

    fn client(&self, caller: Caller) -> &reqwest::Client {
        &self.clients.iter().find(|(c, _)| *c == caller).unwrap().1
    }

    async fn project_id(&self) -> i64 {
        let m: Value =
            self.s.client.get(self.s.url("/api/v2.0/projects/m")).send().await.unwrap().json().await.unwrap();
        m["project_id"].as_i64().unwrap()
    }

    fn fresh(&self) -> usize {
        self.n.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
    }

    /// Tries one action as `caller`; returns whether it was allowed (a refusal must be 401 or
    /// 403 and nothing else).
    async fn attempt(&self, caller: Caller, action: &str) -> bool {
        let s = &self.s;
        let c = self.client(caller);
        let n = self.fresh();
        let resp = match action {
            "pull" => {
                s.push_image("m/app", "pull", &[b"p"]).await;
                c.get(s.url("/v2/m/app/manifests/pull")).send().await.unwrap()
            }
            "push" => c.post(s.url("/v2/m/app/blobs/uploads/")).send().await.unwrap(),
            "v2 delete manifest" => {
                let (d, _) = s.push_image("m/app", &format!("d{n}"), &[format!("layer {n}").as_bytes()]).await;
                c.delete(s.url(&format!("/v2/m/app/manifests/{d}"))).send().await.unwrap()
            }
            "api delete artifact" => {
                let (d, _) = s.push_image("m/app", &format!("a{n}"), &[format!("layer {n}").as_bytes()]).await;
                c.delete(s.url(&format!("/api/v2.0/projects/m/repositories/app/artifacts/{d}"))).send().await.unwrap()
            }
            "api delete tag" => {
                s.push_image("m/app", &format!("t{n}"), &[b"p"]).await;
                c.delete(s.url(&format!("/api/v2.0/projects/m/repositories/app/artifacts/t{n}/tags/t{n}"))).send().await.unwrap()
            }
            "add tag" => {
                s.push_image("m/app", "base", &[b"p"]).await;
                c.post(s.url("/api/v2.0/projects/m/repositories/app/artifacts/base/tags"))
                    .json(&json!({"name": format!("n{n}")}))
                    .send()
                    .await
                    .unwrap()
            }
            "create member" => {
                let name = format!("new{n}");
                s.client.post(s.url("/api/v2.0/users")).json(&json!({"username": name, "password": "Passw0rdX"})).send().await.unwrap();
                c.post(s.url("/api/v2.0/projects/m/members"))
                    .json(&json!({"role_id": 3, "member_user": {"username": name}}))
                    .send()
                    .await
                    .unwrap()
            }
            "delete member" => {
                let name = format!("gone{n}");
                s.client.post(s.url("/api/v2.0/users")).json(&json!({"username": name, "password": "Passw0rdX"})).send().await.unwrap();
                let added = s
                    .client
                    .post(s.url("/api/v2.0/projects/m/members"))
                    .json(&json!({"role_id": 3, "member_user": {"username": name}}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(added.status(), StatusCode::CREATED);
                let mid = header(&added, "location").rsplit('/').next().unwrap().to_string();
                c.delete(s.url(&format!("/api/v2.0/projects/m/members/{mid}"))).send().await.unwrap()
            }
            "list members" => c.get(s.url("/api/v2.0/projects/m/members")).send().await.unwrap(),
            "create robot" => c
                .post(s.url("/api/v2.0/robots"))
                .json(&json!({"name": format!("r{n}"), "level": "project", "duration": -1,
                    "permissions": [{"kind": "project", "namespace": "m", "access": [{"resource": "repository", "action": "pull"}]}]}))
                .send()
                .await
                .unwrap(),
            "update project metadata" => {
                c.put(s.url("/api/v2.0/projects/m")).json(&json!({"metadata": {"auto_scan": "true"}})).send().await.unwrap()
            }
            "delete project" => {
                // A fresh, empty project with the same members' roles as `m`, so that an
                // allowed delete has something to delete.
                let name = format!("gone{n}");
                s.client.post(s.url("/api/v2.0/projects")).json(&json!({"project_name": name})).send().await.unwrap();
                let members: Vec<Value> =
                    s.client.get(s.url("/api/v2.0/projects/m/members?page_size=100")).send().await.unwrap().json().await.unwrap();
                for m in members.iter().filter(|m| m["entity_name"] != "admin") {
                    s.client
                        .post(s.url(&format!("/api/v2.0/projects/{name}/members")))
                        .json(&json!({"role_id": m["role_id"], "member_user": {"username": m["entity_name"]}}))
                        .send()
                        .await
                        .unwrap();
                }
                c.delete(s.url(&format!("/api/v2.0/projects/{name}"))).send().await.unwrap()
            }
            "list projects shows it" => {
                let resp = c.get(s.url("/api/v2.0/projects?page_size=100")).send().await.unwrap();
                if resp.status().is_success() {
                    let list: Vec<Value> = resp.json().await.unwrap();
                    return list.iter().any(|p| p["name"] == "m");
                }
                resp
            }
            "read repositories" => c.get(s.url("/api/v2.0/projects/m/repositories")).send().await.unwrap(),
            "create global label" => {
                c.post(s.url("/api/v2.0/labels")).json(&json!({"name": format!("g{n}"), "scope": "g"})).send().await.unwrap()
            }
            "create project label" => c
                .post(s.url("/api/v2.0/labels"))
                .json(&json!({"name": format!("p{n}"), "scope": "p", "project_id": self.project_id().await}))
                .send()
                .await
                .unwrap(),
            "list project labels" => c
                .get(s.url(&format!("/api/v2.0/labels?scope=p&project_id={}", self.project_id().await)))
                .send()
                .await
                .unwrap(),
            "label an artifact" => {
                s.push_image("m/app", "base", &[b"p"]).await;
                let created = s
                    .client
                    .post(s.url("/api/v2.0/labels"))
                    .json(&json!({"name": format!("on{n}"), "scope": "g"}))
                    .send()
                    .await
                    .unwrap();
                let id = header(&created, "location").rsplit('/').next().unwrap().parse::<i64>().unwrap();
                c.post(s.url("/api/v2.0/projects/m/repositories/app/artifacts/base/labels"))
                    .json(&json!({"id": id}))
                    .send()
                    .await
                    .unwrap()
            }
            other => panic!("unknown action {other}"),
        };
        let status = resp.status();
        if status.is_success() {
            true
        } else {
            assert!(
                status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN,
                "{caller:?} {action}: refused with {status}, expected 401 or 403"
            );
            false
        }
    }
}

#[tokio::test]
async fn every_caller_against_every_action() {
    let dir = tempfile::tempdir().unwrap();
    let world = World::new(dir.path()).await;
    let mut wrong = Vec::new();
    for (action, expected) in MATRIX {
        for (caller, allowed) in CALLERS.iter().zip(expected) {
            let got = world.attempt(*caller, action).await;
            if got != *allowed {
                wrong.push(format!("{caller:?} {action}: allowed={got}, expected {allowed}"));
            }
        }
    }
    assert!(wrong.is_empty(), "permission matrix mismatches:\n{}", wrong.join("\n"));
}
