//! Copying a database into a fresh one (`migrate-data`): every table is either copied or
//! named as left out, rows and ids arrive whole, and a target with users is refused.

mod common;

use berth_db::{Db, NOT_COPIED, NewUser};

#[tokio::test]
async fn every_table_is_copied_or_left_out_on_purpose() {
    let t = common::open().await;
    let mut copied = Db::copied_tables();
    copied.extend(NOT_COPIED);
    copied.sort_unstable();
    let tables = t.db.table_names().await.unwrap();
    assert_eq!(tables, copied, "a migration added a table that migrate-data does not know");
}

#[tokio::test]
async fn rows_and_ids_arrive_whole() {
    let dir = tempfile::tempdir().unwrap();
    let source = Db::open_sqlite(&dir.path().join("source.db")).await.unwrap();
    let user =
        |name| NewUser { username: name, email: None, realname: "", comment: "", password_hash: "h", sysadmin: false };
    let first = source.create_user(&user("first")).await.unwrap();
    let gone = source.create_user(&user("gone")).await.unwrap();
    source.delete_user(gone).await.unwrap();
    let owner = source.create_user(&user("owner")).await.unwrap();
    let project = source.create_project("p", owner, &[("public", "true")]).await.unwrap();
    source.set_setting("self_registration", "true").await.unwrap();

    let target = common::open().await;
    let counts = source.copy_into(&target.db).await.unwrap();
    assert!(counts.iter().all(|c| c.source == c.target));
    assert_eq!(counts.iter().find(|c| c.table == "users").unwrap().target, 2);
    let copied = target.db.user_by_name("owner").await.unwrap().unwrap();
    assert_eq!(copied.id, owner, "ids are kept (with a gap where a user was deleted)");
    assert_eq!(target.db.user_by_id(first).await.unwrap().unwrap().username, "first");
    assert_eq!(target.db.project_by_name("p").await.unwrap().unwrap().id, project);
    assert_eq!(target.db.setting("self_registration").await.unwrap().as_deref(), Some("true"));
    // New rows continue after the copied ids.
    let next = target.db.create_user(&user("next")).await.unwrap();
    assert!(next > owner);

    let again = source.copy_into(&target.db).await;
    assert!(again.is_err(), "a target that has users is refused");
}
