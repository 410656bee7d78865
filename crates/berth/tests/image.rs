//! The container image (`deploy/image/build`): built with podman from this machine's files,
//! FROM scratch; its configuration (non-root user, health check, entrypoint, port, volume);
//! and its file system run as the container would run it, as user 10000 in a chroot (this
//! machine's container runtime cannot start containers: it lacks the cgroup controllers), where
//! Berth serves and its health check answers.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use common::*;

#[test]
fn the_image_runs_as_its_user_and_reports_its_health() {
    if !have("podman") || !have("chroot") || !have("curl") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let storage = work.path().join("podman");
    let podman_args = format!(
        "--root {0}/root --runroot {0}/run --storage-driver vfs --cgroup-manager cgroupfs --events-backend file",
        storage.display()
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/image/build");
    let size = run(Command::new(&script).args([
        "--binary",
        env!("CARGO_BIN_EXE_berth"),
        "--tag",
        "localhost/berth:test",
        "--podman-args",
        &podman_args,
    ]));
    let size: u64 = size.trim().lines().last().unwrap().parse().unwrap();
    assert!(size > 1 << 20, "{size}");
    let podman = || {
        let mut cmd = Command::new("podman");
        cmd.args(podman_args.split(' '));
        cmd
    };
    let config = run(podman().args([
        "image",
        "inspect",
        "--format",
        "{{.Config.User}}|{{json .Config.Healthcheck.Test}}|{{json .Config.Entrypoint}}|{{json .Config.ExposedPorts}}|{{json .Config.Volumes}}",
        "localhost/berth:test",
    ]));
    let fields: Vec<&str> = config.trim().split('|').collect();
    assert_eq!(fields[0], "10000:10000");
    assert_eq!(fields[1], r#"["CMD","/usr/local/bin/berth","healthcheck"]"#);
    assert_eq!(fields[2], r#"["/usr/local/bin/berth"]"#);
    assert!(fields[3].contains("5000/tcp") && fields[4].contains("/data"), "{config}");

    // Its file system, copied out, run as the container runs it.
    let mounted = run(podman().args(["image", "mount", "localhost/berth:test"]));
    let rootfs = work.path().join("rootfs");
    run(Command::new("cp").arg("-a").arg(mounted.trim()).arg(&rootfs));
    run(podman().args(["image", "unmount", "localhost/berth:test"]));
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let in_image = |args: &[&str]| {
        let mut cmd = Command::new("chroot");
        cmd.arg("--userspec=10000:10000").arg(&rootfs).arg("/usr/local/bin/berth").args(args);
        cmd.env("BERTH_HTTP__ADDR", &addr).env("BERTH_ADMIN_PASSWORD", ADMIN_PASSWORD);
        cmd
    };
    assert!(!in_image(&["healthcheck"]).output().unwrap().status.success(), "nothing serves yet");
    let mut server = in_image(&["serve", "--data-dir", "/data"]).stdout(Stdio::piped()).spawn().unwrap();
    let stdout = server.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let listening = lines.by_ref().map_while(Result::ok).any(|l| l.contains("listening on http://"));
    assert!(listening, "Berth did not start in the image");
    let health = in_image(&["healthcheck"]).output().unwrap();
    let pong = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", &format!("http://{addr}/v2/")])
        .output()
        .unwrap();
    let owner = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(rootfs.join("data/berth.db")).unwrap());
    let _ = server.kill();
    let _ = server.wait();
    assert!(health.status.success(), "{}", String::from_utf8_lossy(&health.stderr));
    assert_eq!(String::from_utf8_lossy(&pong.stdout), "401");
    assert_eq!(owner, 10000, "the data belongs to the image's user");
    assert!(!in_image(&["healthcheck"]).output().unwrap().status.success(), "stopped: unhealthy");
}
