//! End to end with the signing and artifact clients against the real binary: cosign 2 (tag
//! scheme) and cosign 3 (a bundle referrer) signatures, a notation signature, SBOMs attached
//! with `cosign attach sbom` and `oras attach`, all shown by Harbor's API as accessories of their
//! subject and not as artifacts, and gone with it, through either API; a Helm chart (pushed as
//! Helm pushes it, with oras) with its `Chart.yaml` in `extra_attrs`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use serde_json::Value;

/// The clients, each with its configuration (credentials, keys) under `home`.
struct Clients {
    home: PathBuf,
    registry: String,
    cosign2: PathBuf,
    cosign3: PathBuf,
    notation: PathBuf,
    oras: PathBuf,
    crane: PathBuf,
}

impl Clients {
    fn find(home: &Path, berth: &Berth) -> Option<Clients> {
        Some(Clients {
            home: home.to_path_buf(),
            registry: berth.addr.clone(),
            cosign2: sid_client("cosign2")?,
            cosign3: sid_client("cosign3")?,
            notation: sid_client("notation")?,
            oras: sid_client("oras")?,
            crane: sid_client("crane")?,
        })
    }

    /// `program` with its configuration in `home` and no way to reach the internet's services
    /// (cosign 3 asks Sigstore's TUF repository and goes on without it).
    fn cmd(&self, program: &Path) -> Command {
        let mut cmd = Command::new(program);
        cmd.current_dir(&self.home)
            .env("HOME", &self.home)
            .env("DOCKER_CONFIG", self.home.join("docker"))
            .env("XDG_CONFIG_HOME", self.home.join("xdg"))
            .env("COSIGN_PASSWORD", "")
            .env("TUF_ROOT", self.home.join("tuf"));
        cmd
    }

    fn image(&self, repository: &str, tag: &str, content: &str) -> String {
        let dir = self.home.join(format!("layer-{tag}"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("file.txt"), content).unwrap();
        let tar = self.home.join(format!("layer-{tag}.tar"));
        run(Command::new("tar").arg("-C").arg(&dir).arg("-cf").arg(&tar).arg("file.txt"));
        let reference = format!("{}/{repository}:{tag}", self.registry);
        // An image from scratch has no platform until it is given one, in another repository
        // so that the first, untagged, is not an artifact of this one.
        let scratch = format!("{}/library/scratch:{tag}", self.registry);
        run(self.cmd(&self.crane).args(["append", "--insecure", "-f"]).arg(&tar).args(["-t", &scratch]));
        run(self.cmd(&self.crane).args([
            "mutate",
            "--insecure",
            "--set-platform",
            "linux/amd64",
            "-t",
            &reference,
            &scratch,
        ]));
        run(self.cmd(&self.crane).args(["digest", "--insecure", &reference])).trim().to_string()
    }

    fn cosign(&self, cosign: &Path, args: &[&str]) -> String {
        run(self.cmd(cosign).args(args).args(["--allow-http-registry", "--allow-insecure-registry"]))
    }
}

fn get(berth: &Berth, path: &str) -> (u16, Value) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let resp = common::http().get(berth.url(path)).header("authorization", ADMIN_BASIC).send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    })
}

fn delete(berth: &Berth, path: &str) -> u16 {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        common::http()
            .delete(berth.url(path))
            .header("authorization", ADMIN_BASIC)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    })
}

fn digests(list: &Value) -> Vec<String> {
    list.as_array().unwrap().iter().map(|a| a["digest"].as_str().unwrap().to_string()).collect()
}

fn sorted_types(accessories: &Value) -> Vec<String> {
    let mut types: Vec<String> =
        accessories.as_array().unwrap().iter().map(|a| a["type"].as_str().unwrap().to_string()).collect();
    types.sort();
    types
}

/// Nothing of `digest` is left: no referrer, no tag of cosign's scheme, no manifest.
fn nothing_left_of(berth: &Berth, repository: &str, digest: &str, accessories: &[String]) {
    let (_, referrers) = get(berth, &format!("/v2/{repository}/referrers/{digest}"));
    assert_eq!(referrers["manifests"], serde_json::json!([]), "referrers left behind");
    let (_, tags) = get(berth, &format!("/v2/{repository}/tags/list"));
    let hex = digest.trim_start_matches("sha256:");
    let left: Vec<_> =
        tags["tags"].as_array().into_iter().flatten().filter(|t| t.as_str().unwrap().contains(hex)).collect();
    assert!(left.is_empty(), "tags of the tag scheme left behind: {left:?}");
    for d in accessories.iter().chain(std::iter::once(&digest.to_string())) {
        assert_eq!(get(berth, &format!("/v2/{repository}/manifests/{d}")).0, 404, "{d} is still there");
    }
}

#[test]
fn signatures_and_sboms_are_accessories_of_their_subject_and_go_with_it() {
    let work = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let berth = Berth::start(data.path());
    let Some(c) = Clients::find(work.path(), &berth) else { return };
    let registry = c.registry.clone();
    run(c.cmd(&c.crane).args(["auth", "login", &registry, "-u", "admin", "-p", ADMIN_PASSWORD]));
    let signed = c.image("library/app", "v1", "one");
    let other = c.image("library/app", "v2", "two");
    let subject = format!("{registry}/library/app@{signed}");

    // Every kind of accessory on one image.
    run(c.cmd(&c.cosign2).arg("generate-key-pair"));
    c.cosign(&c.cosign2, &["sign", "--key", "cosign.key", "--tlog-upload=false", "-y", &subject]);
    run(c.cmd(&c.cosign3).args([
        "signing-config",
        "create",
        "--no-default-fulcio",
        "--no-default-oidc",
        "--no-default-rekor",
        "--no-default-tsa",
        "--out",
        "signing-config.json",
    ]));
    c.cosign(&c.cosign3, &["sign", "--key", "cosign.key", "--signing-config", "signing-config.json", "-y", &subject]);
    run(c.cmd(&c.notation).args(["cert", "generate-test", "--default", "berth-test"]));
    run(c.cmd(&c.notation).args(["sign", "--insecure-registry", &subject]));
    std::fs::write(
        work.path().join("sbom.spdx.json"),
        r#"{"spdxVersion":"SPDX-2.3","SPDXID":"SPDXRef-DOCUMENT","name":"app","packages":[]}"#,
    )
    .unwrap();
    c.cosign(&c.cosign2, &["attach", "sbom", "--sbom", "sbom.spdx.json", "--type", "spdx", &subject]);
    run(c.cmd(&c.oras).args([
        "attach",
        "--plain-http",
        "--artifact-type",
        "application/spdx+json",
        &subject,
        "sbom.spdx.json:application/spdx+json",
    ]));
    // The signatures are read back as their clients read them.
    c.cosign(&c.cosign2, &["verify", "--key", "cosign.pub", "--insecure-ignore-tlog=true", &subject]);

    // Harbor's view: two artifacts, the accessories under their subject.
    let (_, listed) = get(&berth, "/api/v2.0/projects/library/repositories/app/artifacts?with_accessory=true");
    let mut listed_digests = digests(&listed);
    listed_digests.sort();
    let mut images = vec![signed.clone(), other.clone()];
    images.sort();
    assert_eq!(listed_digests, images, "accessories are not artifacts of their own: {listed}");
    let app = listed.as_array().unwrap().iter().find(|a| a["digest"] == signed.as_str()).unwrap();
    let expected =
        ["signature.cosign", "signature.cosign", "signature.notation", "subject.accessory", "subject.accessory"];
    assert_eq!(sorted_types(&app["accessories"]), expected, "{}", app["accessories"]);
    assert_eq!(app["extra_attrs"]["architecture"], "amd64");
    assert_eq!(app["extra_attrs"]["os"], "linux");
    let (_, accessories) =
        get(&berth, &format!("/api/v2.0/projects/library/repositories/app/artifacts/{signed}/accessories"));
    assert_eq!(sorted_types(&accessories), expected);
    let accessory_digests = digests(&accessories);
    let (_, repo) = get(&berth, "/api/v2.0/projects/library/repositories/app");
    assert_eq!(repo["artifact_count"], 2);
    let (_, everything) = get(&berth, "/api/v2.0/projects/library/repositories/app/artifacts?q=base%3D*&page_size=100");
    assert!(everything.as_array().unwrap().len() > 2, "q=base=* lists accessories too");

    // Deleted through Harbor's API, the subject takes every accessory with it.
    assert_eq!(delete(&berth, &format!("/api/v2.0/projects/library/repositories/app/artifacts/{signed}")), 200);
    nothing_left_of(&berth, "library/app", &signed, &accessory_digests);
    let (_, listed) = get(&berth, "/api/v2.0/projects/library/repositories/app/artifacts?q=base%3D*");
    assert_eq!(digests(&listed), std::slice::from_ref(&other), "nothing of the deleted image is left");

    // Deleted through /v2 (crane), the same.
    let subject = format!("{registry}/library/app@{other}");
    c.cosign(&c.cosign2, &["sign", "--key", "cosign.key", "--tlog-upload=false", "-y", &subject]);
    run(c.cmd(&c.notation).args(["sign", "--insecure-registry", &subject]));
    let (_, accessories) =
        get(&berth, &format!("/api/v2.0/projects/library/repositories/app/artifacts/{other}/accessories"));
    assert_eq!(sorted_types(&accessories), ["signature.cosign", "signature.notation"]);
    let accessory_digests = digests(&accessories);
    run(c.cmd(&c.crane).args(["delete", "--insecure", &subject]));
    nothing_left_of(&berth, "library/app", &other, &accessory_digests);
}

#[test]
fn a_helm_chart_shows_its_chart_yaml() {
    let work = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let berth = Berth::start(data.path());
    let Some(c) = Clients::find(work.path(), &berth) else { return };
    let registry = c.registry.clone();
    run(c.cmd(&c.oras).args(["login", "--plain-http", "-u", "admin", "-p", ADMIN_PASSWORD, &registry]));
    // A chart as `helm push` sends it: the Chart.yaml as JSON in the config, the packaged chart
    // as the one layer.
    let chart = work.path().join("web");
    std::fs::create_dir_all(chart.join("templates")).unwrap();
    let chart_yaml = "apiVersion: v2\nname: web\nversion: 1.2.3\nappVersion: \"2.0\"\ndescription: A web server\n";
    std::fs::write(chart.join("Chart.yaml"), chart_yaml).unwrap();
    std::fs::write(chart.join("values.yaml"), "replicas: 1\n").unwrap();
    run(Command::new("tar").arg("-C").arg(work.path()).args(["-czf", "web-1.2.3.tgz", "web"]).current_dir(work.path()));
    let config =
        r#"{"apiVersion":"v2","name":"web","version":"1.2.3","appVersion":"2.0","description":"A web server"}"#;
    std::fs::write(work.path().join("config.json"), config).unwrap();
    run(c.cmd(&c.oras).args([
        "push",
        "--plain-http",
        "--config",
        "config.json:application/vnd.cncf.helm.config.v1+json",
        &format!("{registry}/library/web:1.2.3"),
        "web-1.2.3.tgz:application/vnd.cncf.helm.chart.content.v1.tar+gzip",
    ]));
    let (_, artifact) = get(&berth, "/api/v2.0/projects/library/repositories/web/artifacts/1.2.3");
    assert_eq!(artifact["type"], "CHART");
    assert_eq!(artifact["media_type"], "application/vnd.cncf.helm.config.v1+json");
    assert_eq!(artifact["extra_attrs"]["name"], "web");
    assert_eq!(artifact["extra_attrs"]["version"], "1.2.3");
    assert_eq!(artifact["extra_attrs"]["appVersion"], "2.0");
    assert_eq!(artifact["extra_attrs"]["description"], "A web server");
    let (status, values) =
        get(&berth, "/api/v2.0/projects/library/repositories/web/artifacts/1.2.3/additions/values.yaml");
    assert_eq!(status, 200, "{values}");
}
