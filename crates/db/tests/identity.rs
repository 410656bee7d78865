//! Users, projects, metadata, members and settings against a real database (SQLite, or PostgreSQL with
//! `BERTH_TEST_DATABASE=postgres`).

use berth_db::{Db, DbError, ListQuery, Match, NewUser};

fn fuzzy(key: &str, v: &str) -> ListQuery {
    ListQuery { terms: vec![(key.to_string(), Match::Fuzzy(v.to_string()))], sort: Vec::new() }
}

mod common;

async fn open() -> (common::TestDb, Db) {
    let t = common::open().await;
    let db = t.db.clone();
    (t, db)
}

fn user<'a>(name: &'a str, email: Option<&'a str>) -> NewUser<'a> {
    NewUser { username: name, email, realname: "Real", comment: "", password_hash: "$argon2id$x", sysadmin: false }
}

#[tokio::test]
async fn users_are_unique_and_searchable() {
    let (_d, db) = open().await;
    let alice = db.create_user(&user("alice", Some("a@example.com"))).await.unwrap();
    db.create_user(&user("bob", None)).await.unwrap();
    db.create_user(&user("al_x", None)).await.unwrap();
    assert!(matches!(db.create_user(&user("alice", None)).await, Err(DbError::Conflict(_))));
    assert!(matches!(db.create_user(&user("carol", Some("a@example.com"))).await, Err(DbError::Conflict(_))));

    let (found, total) = db.list_users(&fuzzy("username", "al"), 10, 0).await.unwrap();
    assert_eq!(total, 2);
    assert_eq!(found.iter().map(|u| u.username.as_str()).collect::<Vec<_>>(), ["alice", "al_x"]);
    // `_` is matched literally, not as a wildcard.
    let (found, _) = db.list_users(&fuzzy("username", "l_"), 10, 0).await.unwrap();
    assert_eq!(found.len(), 1);
    let (page, total) = db.list_users(&ListQuery::default(), 1, 1).await.unwrap();
    assert_eq!((page[0].username.as_str(), total), ("bob", 3));

    assert!(db.set_user_sysadmin(alice, true).await.unwrap());
    assert!(db.set_user_password(alice, "$argon2id$y").await.unwrap());
    assert!(db.update_user_profile(alice, Some("new@example.com"), "Alice", "hi").await.unwrap());
    let a = db.user_by_name("alice").await.unwrap().unwrap();
    assert!(a.sysadmin);
    assert_eq!(
        (a.password_hash.as_str(), a.email.as_deref(), a.comment.as_str()),
        ("$argon2id$y", Some("new@example.com"), "hi")
    );
    assert_eq!(db.user_by_id(alice).await.unwrap().unwrap().username, "alice");
    assert!(db.delete_user(alice).await.unwrap());
    assert!(!db.delete_user(alice).await.unwrap());
    assert!(db.user_by_name("alice").await.unwrap().is_none());
}

#[tokio::test]
async fn projects_carry_metadata_and_their_owner_as_admin() {
    let (_d, db) = open().await;
    let owner = db.create_user(&user("owner", None)).await.unwrap();
    let p = db.create_project("team", owner, &[("public", "false"), ("auto_scan", "true")]).await.unwrap();
    assert!(matches!(db.create_project("team", owner, &[]).await, Err(DbError::Conflict(_))));
    assert_eq!(db.project_by_name("team").await.unwrap().unwrap().id, p);
    assert_eq!(db.project_by_id(p).await.unwrap().unwrap().owner_id, owner);
    assert_eq!(db.member_role(p, owner).await.unwrap(), Some(1));
    assert_eq!(db.member_role(p, owner + 1).await.unwrap(), None);
    let dev = db.create_user(&user("dev", None)).await.unwrap();
    db.add_member(p, "u", dev, 2).await.unwrap();
    assert_eq!(db.member_role(p, dev).await.unwrap(), Some(2));
    assert!(matches!(db.add_member(p, "u", dev, 3).await, Err(DbError::Conflict(_))));

    db.set_project_metadata(p, &[("public", "true"), ("severity", "high")]).await.unwrap();
    assert_eq!(
        db.project_metadata(p).await.unwrap(),
        [("auto_scan".into(), "true".into()), ("public".into(), "true".into()), ("severity".into(), "high".into())]
    );
    assert!(db.delete_project_metadata(p, "severity").await.unwrap());
    assert!(!db.delete_project_metadata(p, "severity").await.unwrap());

    assert_eq!(db.setting("project_creation_restriction").await.unwrap(), None);
    db.set_setting("project_creation_restriction", "adminonly").await.unwrap();
    db.set_setting("project_creation_restriction", "everyone").await.unwrap();
    assert_eq!(db.setting("project_creation_restriction").await.unwrap().as_deref(), Some("everyone"));
}

#[tokio::test]
async fn projects_are_listed_as_each_caller_may_see_them() {
    let (_d, db) = open().await;
    let owner = db.create_user(&user("owner", None)).await.unwrap();
    let member = db.create_user(&user("member", None)).await.unwrap();
    let outsider = db.create_user(&user("outsider", None)).await.unwrap();
    db.create_project("pub-a", owner, &[("public", "true")]).await.unwrap();
    let private = db.create_project("priv-b", owner, &[("public", "false")]).await.unwrap();
    db.create_project("priv-c", owner, &[]).await.unwrap();
    db.add_member(private, "u", member, 3).await.unwrap();
    let names =
        |(rows, total): (Vec<berth_db::ProjectRow>, i64)| (rows.into_iter().map(|p| p.name).collect::<Vec<_>>(), total);

    assert_eq!(
        names(db.list_projects(None, "", None, &ListQuery::default(), 10, 0).await.unwrap()),
        (vec!["priv-b".into(), "priv-c".into(), "pub-a".into()], 3)
    );
    assert_eq!(
        names(db.list_projects(Some(member), "", None, &ListQuery::default(), 10, 0).await.unwrap()),
        (vec!["priv-b".into(), "pub-a".into()], 2)
    );
    assert_eq!(
        names(db.list_projects(Some(outsider), "", None, &ListQuery::default(), 10, 0).await.unwrap()),
        (vec!["pub-a".into()], 1)
    );
    assert_eq!(
        names(db.list_projects(Some(0), "", None, &ListQuery::default(), 10, 0).await.unwrap()),
        (vec!["pub-a".into()], 1)
    );
    assert_eq!(
        names(db.list_projects(None, "priv", Some(false), &ListQuery::default(), 1, 1).await.unwrap()),
        (vec!["priv-c".into()], 2)
    );
    assert_eq!(names(db.list_projects(None, "", Some(true), &ListQuery::default(), 10, 0).await.unwrap()).1, 1);

    assert_eq!(db.project_repository_count(private).await.unwrap(), 0);
    db.ensure_repository("priv-b/app", private).await.unwrap();
    assert!(!db.delete_empty_project(private).await.unwrap(), "a project with repositories stays");
    let empty = db.project_by_name("priv-c").await.unwrap().unwrap().id;
    assert!(db.delete_empty_project(empty).await.unwrap());
    assert!(db.project_by_name("priv-c").await.unwrap().is_none());
}
