#!/usr/bin/env python3
"""Drives PyPI's harborapi (pydantic models of Harbor's schema) over every operation Berth
serves that the client has a method for, against a running Berth; any exception, schema error
or wrong answer fails. Prints one line per call and `harborapi ok <n>` at the end.

Usage: harborapi_all.py <host:port> <admin password>"""
import asyncio
import hashlib
import json
import sys

import httpx
from harborapi import HarborAsyncClient
from harborapi.exceptions import BadRequest, Forbidden, NotFound, PreconditionFailed
from harborapi.models import (
    CVEAllowlist,
    CVEAllowlistItem,
    ScannerRegistrationReq,
    Configurations,
    ImmutableRule,
    ImmutableSelector,
    Label,
    ProjectMetadata,
    ProjectReq,
    QuotaUpdateReq,
    ResourceList,
    Repository,
    RetentionPolicy,
    RetentionPolicyScope,
    RetentionRule,
    RetentionRuleTrigger,
    RetentionSelector,
    RobotCreate,
    RobotPermission,
    Access,
    Schedule,
    ScheduleObj,
    Tag,
    UserCreationReq,
    UserProfile,
)

ADDR, PASSWORD = sys.argv[1], sys.argv[2]
BASE = f"http://{ADDR}"
calls = 0


def push_image(repository: str, tag: str, content: bytes) -> str:
    """An image pushed over /v2 as any client would: two blobs, then the manifest."""
    auth = ("admin", PASSWORD)
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []},
                         "history": [{"created": "2026-01-01T00:00:00Z", "created_by": "harborapi test"}]}).encode()
    descriptors = []
    for blob, media in ((config, "application/vnd.oci.image.config.v1+json"),
                        (content, "application/vnd.oci.image.layer.v1.tar")):
        digest = "sha256:" + hashlib.sha256(blob).hexdigest()
        r = httpx.post(f"{BASE}/v2/{repository}/blobs/uploads/?digest={digest}", content=blob, auth=auth)
        assert r.status_code == 201, r.text
        descriptors.append({"mediaType": media, "digest": digest, "size": len(blob)})
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": descriptors[0], "layers": descriptors[1:]}).encode()
    r = httpx.put(f"{BASE}/v2/{repository}/manifests/{tag}", content=manifest, auth=auth,
                  headers={"content-type": "application/vnd.oci.image.manifest.v1+json"})
    assert r.status_code == 201, r.text
    return r.headers["docker-content-digest"]


async def call(name, coro):
    global calls
    result = await coro
    calls += 1
    print(f"{name}: ok")
    return result


async def ended(get, id):
    """Waits until the job execution `id` has ended (polls are not counted as calls)."""
    for _ in range(400):
        if (await get(id)).job_status in ("Success", "Error", "Stopped"):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"execution {id} did not end")


async def refused(name, coro, exc):
    global calls
    try:
        await coro
    except exc:
        calls += 1
        print(f"{name}: refused as documented")
        return
    raise AssertionError(f"{name} should have been refused with {exc.__name__}")


async def main():
    c = HarborAsyncClient(url=f"{BASE}/api/v2.0", username="admin", secret=PASSWORD)
    digest = push_image("library/app", "v1", b"layer one")

    # ping, health, systeminfo, permissions
    assert await call("ping", c.ping()) == "Pong"
    assert (await call("health_check", c.health_check())).status == "healthy"
    info = await call("get_system_info", c.get_system_info())
    assert info.auth_mode == "db_auth"
    await call("get_system_volume_info", c.get_system_volume_info())
    # No CA certificate is configured: Harbor's 404, which this method hands back as a file.
    cert = await call("get_system_certificate", c.get_system_certificate())
    assert b"no root CA" in bytes(cert.content), cert.content
    await call("get_permissions", c.get_permissions())
    await call("get_statistics", c.get_statistics())
    await call("search", c.search("app"))

    # users
    me = await call("get_current_user", c.get_current_user())
    assert me.username == "admin"
    await call("get_current_user_permissions", c.get_current_user_permissions(scope="/project/1", relative=True))
    await call("create_user", c.create_user(UserCreationReq(username="eve", email="eve@example.com",
                                                            realname="Eve", password="Passw0rdX1")))
    users = await call("get_users", c.get_users(query="username=eve"))
    uid = users[0].user_id
    await call("get_user", c.get_user(uid))
    await call("search_users_by_username", c.search_users_by_username("ev"))
    await call("update_user", c.update_user(uid, UserProfile(email="eve@example.org", realname="Eve", comment="x")))
    await call("set_user_password", c.set_user_password(uid, new_password="Another12345"))
    await call("set_user_admin", c.set_user_admin(uid, is_admin=True))
    await refused("set_user_cli_secret", c.set_user_cli_secret(uid, "Secret12345"), PreconditionFailed)

    # projects, metadata, members
    await call("create_project", c.create_project(ProjectReq(project_name="team", metadata=ProjectMetadata(public="false"))))
    assert await call("project_exists", c.project_exists("team"))
    projects = await call("get_projects", c.get_projects())
    assert any(p.name == "team" for p in projects)
    await call("get_project", c.get_project("team"))
    await call("update_project", c.update_project("team", ProjectReq(metadata=ProjectMetadata(auto_scan="true"))))
    await call("get_project_summary", c.get_project_summary("team"))
    await call("get_project_deletable", c.get_project_deletable("team"))
    await call("get_project_metadata", c.get_project_metadata("team"))
    await call("set_project_metadata", c.set_project_metadata("team", ProjectMetadata(severity="high")))
    await call("get_project_metadata_entry", c.get_project_metadata_entry("team", "severity"))
    await call("update_project_metadata_entry", c.update_project_metadata_entry("team", "severity", {"severity": "low"}))
    await call("delete_project_metadata_entry", c.delete_project_metadata_entry("team", "severity"))
    await call("add_project_member_user", c.add_project_member_user("team", "eve", 2))
    members = await call("get_project_members", c.get_project_members("team"))
    mid = next(m.id for m in members if m.entity_name == "eve")
    await call("get_project_member", c.get_project_member("team", mid))
    await call("update_project_member_role", c.update_project_member_role("team", mid, 3))
    await call("remove_project_member", c.remove_project_member("team", mid))

    # robots
    robot = RobotCreate(name="ci", level="project", duration=-1, description="ci", permissions=[
        RobotPermission(kind="project", namespace="team", access=[Access(resource="repository", action="pull")])])
    created = await call("create_robot", c.create_robot(robot))
    await call("get_robots", c.get_robots(query="Level=project,ProjectID=%d" % (await c.get_project("team")).project_id))
    got = await call("get_robot", c.get_robot(created.id))
    got.description = "changed"
    await call("update_robot", c.update_robot(created.id, got))
    sec = await call("refresh_robot_secret", c.refresh_robot_secret(created.id, "Fresh12345Secret"))
    assert sec.secret in ("", None), sec
    await call("delete_robot", c.delete_robot(created.id))

    # repositories and artifacts
    await call("get_repositories", c.get_repositories())
    await call("get_repositories (project)", c.get_repositories("library"))
    await call("get_repository", c.get_repository("library", "app"))
    await call("update_repository", c.update_repository("library", "app", Repository(description="the app")))
    artifacts = await call("get_artifacts", c.get_artifacts("library", "app", with_accessory=True, with_label=True))
    assert [a.digest for a in artifacts] == [digest]
    await call("get_project_artifacts", c.get_project_artifacts("library"))
    a = await call("get_artifact", c.get_artifact("library", "app", digest))
    assert a.extra_attrs.model_dump()["architecture"] == "amd64", a.extra_attrs
    await call("get_artifact_tags", c.get_artifact_tags("library", "app", "v1"))
    await call("create_artifact_tag", c.create_artifact_tag("library", "app", "v1", Tag(name="stable")))
    await call("delete_artifact_tag", c.delete_artifact_tag("library", "app", "v1", "stable"))
    await call("get_artifact_accessories", c.get_artifact_accessories("library", "app", "v1"))
    await call("get_artifact_build_history", c.get_artifact_build_history("library", "app", "v1"))
    await call("get_artifact_vulnerability_reports", c.get_artifact_vulnerability_reports("library", "app", "v1"))
    await call("copy_artifact", c.copy_artifact("team", "copied", f"library/app@{digest}"))

    # quotas: a limit set on team, read back with its usage
    team_id = (await c.get_project("team")).project_id
    quotas = await call("get_quotas", c.get_quotas(reference="project", reference_id=str(team_id)))
    assert len(quotas) == 1 and quotas[0].hard.root["storage"] == -1, quotas
    await call("update_quota", c.update_quota(quotas[0].id, QuotaUpdateReq(hard=ResourceList({"storage": 1 << 30}))))
    quota = await call("get_quota", c.get_quota(quotas[0].id))
    assert quota.hard.root["storage"] == 1 << 30 and quota.used.root["storage"] >= 0, quota

    # immutable tag rules: "stable" cannot be deleted while a rule holds it
    rule = ImmutableRule(
        tag_selectors=[ImmutableSelector(kind="doublestar", decoration="matches", pattern="stable")],
        scope_selectors={"repository": [ImmutableSelector(kind="doublestar", decoration="repoMatches", pattern="**")]},
    )
    await call("create_artifact_tag", c.create_artifact_tag("library", "app", "v1", Tag(name="stable")))
    await call("create_project_immutable_tag_rule", c.create_project_immutable_tag_rule("library", rule))
    rules = await call("get_project_immutable_tag_rules", c.get_project_immutable_tag_rules("library"))
    rule_id = rules[0].id
    try:
        await c.delete_artifact_tag("library", "app", "v1", "stable")
        raise AssertionError("an immutable tag was deleted")
    except PreconditionFailed as e:
        assert "configured as immutable" in str(e), e
    tags = await c.get_artifact_tags("library", "app", "v1", with_immutable_status=True)
    assert [t.immutable for t in tags if t.name == "stable"] == [True], tags
    rule.priority = 1
    await call("update_project_immutable_tag_rule", c.update_project_immutable_tag_rule("library", rule_id, rule))
    await call("enable_project_immutable_tagrule", c.enable_project_immutable_tagrule("library", rule_id, False))
    await call("delete_artifact_tag", c.delete_artifact_tag("library", "app", "v1", "stable"))
    await call("delete_project_immutable_tag_rule", c.delete_project_immutable_tag_rule("library", rule_id))

    # the system configuration: read, changed, changed back
    config = await call("get_config", c.get_config())
    assert config.token_expiration.value == 30 and config.auth_mode.value == "db_auth", config
    await call("update_config", c.update_config(Configurations(banner_message="hello")))
    assert (await c.get_config()).banner_message.value == "hello"
    await c.update_config(Configurations(banner_message=""))

    # tag retention: a policy on library, a dry run, its task and table
    meta = await call("get_retention_metadata", c.get_retention_metadata())
    assert any(t.rule_template == "latestPushedK" for t in meta.templates), meta
    library = await c.get_project("library")
    selector = RetentionSelector(kind="doublestar", decoration="matches", pattern="**")
    policy = RetentionPolicy(
        algorithm="or",
        scope=RetentionPolicyScope(level="project", ref=library.project_id),
        trigger=RetentionRuleTrigger(kind="Schedule", settings={"cron": ""}, references={}),
        rules=[RetentionRule(action="retain", template="latestPushedK", params={"latestPushedK": 10},
                             tag_selectors=[selector],
                             scope_selectors={"repository": [RetentionSelector(
                                 kind="doublestar", decoration="repoMatches", pattern="**")]})],
    )
    await call("create_retention_policy", c.create_retention_policy(policy))
    rid = await call("get_project_retention_id", c.get_project_retention_id("library"))
    got = await call("get_retention_policy", c.get_retention_policy(rid))
    assert got.rules[0].params == {"latestPushedK": 10}, got
    await call("update_retention_policy", c.update_retention_policy(rid, got))
    await call("start_retention_execution", c.start_retention_execution(rid, dry_run=True))
    for _ in range(100):
        executions = await c.get_retention_executions(rid)
        if executions[0].status in ("Success", "Error", "Stopped"):
            break
        await asyncio.sleep(0.1)
    executions = await call("get_retention_executions", c.get_retention_executions(rid))
    assert executions[0].status == "Success" and executions[0].dry_run, executions
    tasks = await call("get_retention_tasks", c.get_retention_tasks(rid, executions[0].id))
    log = await call("get_retention_execution_task_log",
                     c.get_retention_execution_task_log(rid, executions[0].id, tasks[0].id))
    assert "RETAIN" in log, log
    await call("stop_retention_execution", c.stop_retention_execution(rid, executions[0].id))
    await call("delete_retention_policy", c.delete_retention_policy(rid))

    # labels
    await call("create_label", c.create_label(Label(name="prod", color="#ff0000", scope="g")))
    labels = await call("get_labels", c.get_labels(scope="g"))
    lid = next(l.id for l in labels if l.name == "prod")
    await call("get_label", c.get_label(lid))
    await call("update_label", c.update_label(lid, Label(name="production", color="#00ff00", scope="g")))
    await call("add_artifact_label", c.add_artifact_label("library", "app", "v1", Label(id=lid)))
    await call("delete_artifact_label", c.delete_artifact_label("library", "app", "v1", lid))
    await call("delete_label", c.delete_label(lid))

    # audit logs and their purge
    await call("get_audit_logs", c.get_audit_logs())
    await call("get_project_logs", c.get_project_logs("library"))
    manual = Schedule(schedule=ScheduleObj(type="Manual"),
                      parameters={"audit_retention_hour": 0, "include_event_types": "create_project", "dry_run": True})
    await call("create_purge_job_schedule", c.create_purge_job_schedule(manual))
    history = await call("get_purge_job_history", c.get_purge_job_history())
    run = history[0].id
    # A purge is a job: queued, then run by the job service.
    await ended(c.get_purge_job, run)
    job = await call("get_purge_job", c.get_purge_job(run))
    assert job.job_status == "Success", job
    assert "dry run" in await call("get_purge_job_log", c.get_purge_job_log(run))
    await call("stop_purge_job", c.stop_purge_job(run))
    hourly = Schedule(schedule=ScheduleObj(type="Hourly", cron="0 0 * * * *"),
                      parameters={"audit_retention_hour": 168, "include_event_types": "create_project", "dry_run": True})
    await call("update_purge_job_schedule", c.update_purge_job_schedule(hourly))
    await call("get_purge_job_schedule", c.get_purge_job_schedule())

    # garbage collection
    dry = Schedule(schedule=ScheduleObj(type="Manual"), parameters={"dry_run": True, "workers": 2})
    await call("create_gc_schedule", c.create_gc_schedule(dry))
    gc = (await call("get_gc_jobs", c.get_gc_jobs()))[0].id
    await ended(c.get_gc_job, gc)
    job = await call("get_gc_job", c.get_gc_job(gc))
    assert job.job_status == "Success", job
    assert any("dry-run garbage collection" in line for line in await call("get_gc_log", c.get_gc_log(gc)))
    weekly = Schedule(schedule=ScheduleObj(type="Weekly", cron="0 0 0 * * 0"), parameters={"delete_untagged": False})
    await call("update_gc_schedule", c.update_gc_schedule(weekly))
    schedule = await call("get_gc_schedule", c.get_gc_schedule())
    assert schedule.schedule.cron == "0 0 0 * * 0", schedule

    # scanning: the built-in scanner (external adapters refused), a scan, the system's CVE
    # allowlist, scan all
    scanners = await call("get_scanners", c.get_scanners())
    builtin = scanners[0].uuid
    assert scanners[0].is_default and (await call("get_scanner", c.get_scanner(builtin))).name == "Berth"
    metadata = await call("get_scanner_metadata", c.get_scanner_metadata(builtin))
    assert metadata.scanner.name == "Berth", metadata
    await call("set_default_scanner", c.set_default_scanner(builtin))
    assert (await call("get_project_scanner", c.get_project_scanner("library"))).uuid == builtin
    await call("get_project_scanner_candidates", c.get_project_scanner_candidates("library"))
    await call("set_project_scanner", c.set_project_scanner("library", builtin))
    adapter = ScannerRegistrationReq(name="Trivy", url="http://trivy:8080")
    await refused("create_scanner", c.create_scanner(adapter), BadRequest)
    await refused("ping_scanner_adapter", c.ping_scanner_adapter(adapter), BadRequest)
    await refused("update_scanner", c.update_scanner(builtin, adapter), Forbidden)
    await refused("delete_scanner", c.delete_scanner(builtin), Forbidden)
    await call("scan_artifact", c.scan_artifact("library", "app", "v1"))
    allowlist = CVEAllowlist(items=[CVEAllowlistItem(cve_id="CVE-2024-5535")], expires_at=None)
    await call("update_cve_allowlist", c.update_cve_allowlist(allowlist))
    got = await call("get_cve_allowlist", c.get_cve_allowlist())
    assert [i.cve_id for i in got.items] == ["CVE-2024-5535"], got
    await call("create_scan_all_schedule", c.create_scan_all_schedule(Schedule(schedule=ScheduleObj(type="Manual"))))
    assert (await call("get_scan_all_metrics", c.get_scan_all_metrics())).trigger.value == "Manual"
    daily = Schedule(schedule=ScheduleObj(type="Daily", cron="0 0 0 * * *"))
    await call("update_scan_all_schedule", c.update_scan_all_schedule(daily))
    assert (await call("get_scan_all_schedule", c.get_scan_all_schedule())).schedule.type.value == "Daily"

    # deletions
    await call("delete_artifact", c.delete_artifact("team", "copied", digest))
    await call("delete_repository", c.delete_repository("team", "copied"))
    await call("delete_project", c.delete_project("team"))
    await call("delete_user", c.delete_user(uid))
    print(f"harborapi ok {calls}")


asyncio.run(main())
