//! The audit chain across purges (on SQLite, and on PostgreSQL in CI's second pass), and
//! records written only with the change they record.

mod common;

use berth_db::{AuditEvent, ListQuery, NewUser, Operator};

async fn user(db: &berth_db::Db, name: &str) -> i64 {
    let u = NewUser { username: name, email: None, realname: "", comment: "", password_hash: "x", sysadmin: false };
    db.create_user(&u).await.unwrap()
}

async fn total(db: &berth_db::Db) -> i64 {
    db.list_audit_logs(&ListQuery::default(), None, 100, 0).await.unwrap().1
}

#[tokio::test]
async fn purges_keep_the_chain_verifiable() {
    let t = common::open().await;
    let db = &t.db;
    let owner = user(db, "owner").await;
    Operator::scope(Some("192.0.2.7".into()), async {
        Operator::identify("owner");
        db.create_project("alpha", owner, &[]).await.unwrap();
        db.audit_only(AuditEvent::new("login", "user", "ghost").failed(), "ghost").await.unwrap();
        db.create_project("beta", owner, &[]).await.unwrap();
    })
    .await;
    let (page, n) = db.list_audit_logs(&ListQuery::default(), None, 100, 0).await.unwrap();
    assert_eq!(n, 4);
    let alpha = page.iter().find(|r| r.event.resource == "alpha").unwrap();
    assert_eq!((alpha.username.as_str(), alpha.source.as_deref()), ("owner", Some("192.0.2.7")));
    assert_eq!(page.iter().find(|r| r.event.resource == "owner").unwrap().username, "system");
    assert!(db.verify_audit_chain().await.unwrap().problems.is_empty());

    // A purge by type leaves holes; their links keep the chain whole.
    let later = berth_db::now_millis() + 1000;
    let types = vec!["login_user".to_string()];
    assert_eq!(db.purge_audit_logs(later, Some(&types), true).await.unwrap(), 1, "dry run counts");
    assert_eq!(total(db).await, 4, "and removes nothing");
    assert_eq!(db.purge_audit_logs(later, Some(&types), false).await.unwrap(), 1);
    assert_eq!(total(db).await, 3);
    let report = db.verify_audit_chain().await.unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert_eq!(report.records, 3);

    // Everything old: the chain starts again from its anchor, and grows on.
    assert_eq!(db.purge_audit_logs(later, None, false).await.unwrap(), 3);
    assert!(db.verify_audit_chain().await.unwrap().problems.is_empty());
    user(db, "newcomer").await;
    let report = db.verify_audit_chain().await.unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert_eq!(report.records, 1);
}

#[tokio::test]
async fn a_refused_write_leaves_no_record() {
    let t = common::open().await;
    let db = &t.db;
    let owner = user(db, "owner").await;
    db.create_project("alpha", owner, &[]).await.unwrap();
    let before = total(db).await;
    assert!(db.create_project("alpha", owner, &[]).await.is_err());
    assert!(
        db.create_user(&NewUser {
            username: "owner",
            email: None,
            realname: "",
            comment: "",
            password_hash: "x",
            sysadmin: false
        })
        .await
        .is_err()
    );
    assert_eq!(total(db).await, before);
    assert!(!db.delete_member(1, 999).await.unwrap());
    assert_eq!(total(db).await, before, "deleting nothing records nothing");
}
