//! The distribution model's queries against a real database (SQLite, or PostgreSQL with
//! `BERTH_TEST_DATABASE=postgres`).

use berth_db::{Db, NewManifest, NewUser, PutManifestError, UploadRow};

const A: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const B: &str = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const M: &str = "sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc";

mod common;

async fn open() -> (common::TestDb, Db) {
    let t = common::open().await;
    let db = t.db.clone();
    (t, db)
}

fn user(name: &str) -> NewUser<'_> {
    NewUser { username: name, email: None, realname: "", comment: "", password_hash: "x", sysadmin: false }
}

/// A project `p` owned by a new user; returns the project id.
async fn project(db: &Db, name: &str, public: bool) -> i64 {
    let owner = db.create_user(&user(&format!("owner-of-{name}"))).await.unwrap();
    db.create_project(name, owner, &[("public", if public { "true" } else { "false" })]).await.unwrap()
}

fn manifest<'a>(digest: &'a str, blobs: Vec<(&'a str, i64)>) -> NewManifest<'a> {
    NewManifest {
        digest,
        media_type: "application/vnd.oci.image.manifest.v1+json",
        size: 10,
        artifact_type: Some("application/x"),
        subject_digest: None,
        annotations: None,
        blobs,
        manifests: vec![],
        accessory: None,
        extra_attrs: None,
        child_descriptors: None,
        icon: None,
        scan: None,
    }
}

#[tokio::test]
async fn migrations_are_idempotent_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("berth.db");
    let db = Db::open_sqlite(&path).await.unwrap();
    let p = project(&db, "a", false).await;
    db.ensure_repository("a/b", p).await.unwrap();
    db.close().await;
    let db = Db::open_sqlite(&path).await.unwrap();
    assert!(db.repository_id("a/b").await.unwrap().is_some());
}

#[tokio::test]
async fn manifests_need_their_blobs_and_tags_follow_them() {
    let (_d, db) = open().await;
    let p = project(&db, "p", false).await;
    let repo = db.ensure_repository("p/app", p).await.unwrap();
    assert_eq!(db.ensure_repository("p/app", p).await.unwrap(), repo);
    let err = db
        .put_manifest(repo, &manifest(M, vec![(A, 1), (B, 2)]), &["v1"], &db.pin_blob(M).await.unwrap())
        .await
        .unwrap_err();
    assert!(matches!(err, PutManifestError::MissingChild(d) if d == A));
    assert!(db.manifest_by_tag(repo, "v1").await.unwrap().is_none());

    db.link_blob(repo, A, 1, &db.pin_blob(A).await.unwrap()).await.unwrap();
    db.link_blob(repo, B, 2, &db.pin_blob(B).await.unwrap()).await.unwrap();
    // A descriptor whose size is not the blob's is refused, before and inside the write.
    let wrong = manifest(M, vec![(A, 1), (B, 99999)]);
    assert!(matches!(
        db.check_manifest_children(repo, &wrong).await.unwrap_err(),
        PutManifestError::SizeMismatch { declared: 99999, actual: 2, .. }
    ));
    assert!(matches!(
        db.put_manifest(repo, &wrong, &["v1"], &db.pin_blob(M).await.unwrap()).await.unwrap_err(),
        PutManifestError::SizeMismatch { .. }
    ));
    db.put_manifest(repo, &manifest(M, vec![(A, 1), (B, 2)]), &["v1", "latest"], &db.pin_blob(M).await.unwrap())
        .await
        .unwrap();
    // Idempotent: the same manifest again, with one more tag.
    db.put_manifest(repo, &manifest(M, vec![(A, 1), (B, 2)]), &["v2"], &db.pin_blob(M).await.unwrap()).await.unwrap();
    assert_eq!(db.tags(repo, 10, None).await.unwrap(), ["latest", "v1", "v2"]);
    assert_eq!(db.tags(repo, 1, Some("latest")).await.unwrap(), ["v1"]);
    assert_eq!(db.manifest_by_tag(repo, "v1").await.unwrap().unwrap().digest, M);
    assert_eq!(db.catalog(10, None, None).await.unwrap(), ["p/app"]);
    // Visibility: a private project's repositories are hidden from anonymous callers and from
    // users who are not members.
    assert!(db.catalog(10, None, Some(0)).await.unwrap().is_empty());
    let outsider = db.create_user(&user("outsider")).await.unwrap();
    assert!(db.catalog(10, None, Some(outsider)).await.unwrap().is_empty());
    let owner = db.user_by_name("owner-of-p").await.unwrap().unwrap().id;
    assert_eq!(db.catalog(10, None, Some(owner)).await.unwrap(), ["p/app"]);
    db.set_project_metadata(p, &[("public", "true")]).await.unwrap();
    assert_eq!(db.catalog(10, None, Some(0)).await.unwrap(), ["p/app"]);

    assert!(db.delete_tag(repo, "v2").await.unwrap());
    assert!(!db.delete_tag(repo, "v2").await.unwrap());
    assert_eq!(db.delete_artifact(repo, M).await.unwrap(), berth_db::DeletedArtifact::Deleted(vec![M.to_string()]));
    assert!(db.tags(repo, 10, None).await.unwrap().is_empty());
    assert!(db.catalog(10, None, None).await.unwrap().is_empty());
}

#[tokio::test]
async fn uploads_advance_only_from_the_recorded_offset() {
    let (_d, db) = open().await;
    let p = project(&db, "p", false).await;
    let repo = db.ensure_repository("p/app", p).await.unwrap();
    let row = UploadRow {
        id: "u1".into(),
        repository_id: repo,
        algorithm: "sha256".into(),
        offset: 0,
        hash_state: vec![1, 2, 3],
        store_state: vec![],
        created_at: 5,
    };
    db.create_upload(&row).await.unwrap();
    assert_eq!(db.upload("u1").await.unwrap().unwrap(), row);
    assert!(db.advance_upload("u1", 0, 10, &[4], b"parts").await.unwrap());
    assert!(!db.advance_upload("u1", 0, 20, &[5], b"other").await.unwrap());
    let got = db.upload("u1").await.unwrap().unwrap();
    assert_eq!((got.offset, got.hash_state, got.store_state), (10, vec![4], b"parts".to_vec()));
    db.complete_upload("u1", repo, A, 10, &db.pin_blob(A).await.unwrap()).await.unwrap();
    assert!(db.upload("u1").await.unwrap().is_none());
    assert_eq!(db.repository_blob_size(repo, A).await.unwrap(), Some(10));
    assert_eq!(db.repositories_with_blob(A).await.unwrap(), ["p/app"]);
}

#[tokio::test]
async fn referrers_filter_by_artifact_type() {
    let (_d, db) = open().await;
    let p = project(&db, "p", false).await;
    let repo = db.ensure_repository("p/app", p).await.unwrap();
    db.link_blob(repo, A, 1, &db.pin_blob(A).await.unwrap()).await.unwrap();
    let mut sig = manifest(B, vec![(A, 1)]);
    sig.subject_digest = Some(M);
    sig.artifact_type = Some("application/sig");
    db.put_manifest(repo, &sig, &[], &db.pin_blob(M).await.unwrap()).await.unwrap();
    let mut sbom = manifest(A, vec![(A, 1)]);
    sbom.subject_digest = Some(M);
    sbom.artifact_type = Some("application/sbom");
    db.put_manifest(repo, &sbom, &[], &db.pin_blob(M).await.unwrap()).await.unwrap();
    assert_eq!(db.referrers(repo, M, None).await.unwrap().len(), 2);
    let only = db.referrers(repo, M, Some("application/sig")).await.unwrap();
    assert_eq!(only.len(), 1);
    assert_eq!(only[0].digest, B);
}
