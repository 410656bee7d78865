//! The job service on SQLite or (with `BERTH_TEST_DATABASE=postgres`) PostgreSQL: each job
//! runs once across replicas, a dead holder's job is taken over, failures are retried with
//! backoff, fatal ones are not, and a stop reaches a running job.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use berth_db::Db;
use berth_db::jobs::status;
use berth_jobs::{JobContext, JobError, JobService, JobSettings, Worker};

struct TestDb {
    db: Db,
    _dir: tempfile::TempDir,
}

async fn open() -> TestDb {
    let dir = tempfile::tempdir().unwrap();
    let url = if std::env::var("BERTH_TEST_DATABASE").as_deref() == Ok("postgres") {
        let admin = std::env::var("BERTH_TEST_POSTGRES_URL")
            .expect("BERTH_TEST_DATABASE=postgres needs BERTH_TEST_POSTGRES_URL");
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
        berth_db::create_postgres_database(&admin, &format!("berth_test_{}_{nanos}", std::process::id())).await.unwrap()
    } else {
        format!("sqlite://{}?mode=rwc", dir.path().join("berth.db").display())
    };
    TestDb { db: Db::connect(&url, 8).await.unwrap(), _dir: dir }
}

fn fast() -> JobSettings {
    JobSettings {
        lease: Duration::from_millis(600),
        poll: Duration::from_millis(20),
        backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(400),
    }
}

/// Counts its runs per job; fails as the job's parameters say.
#[derive(Default)]
struct Counting {
    runs: Mutex<HashMap<i64, Vec<i64>>>,
}

#[async_trait]
impl Worker for Counting {
    fn kind(&self) -> &'static str {
        "COUNTING"
    }

    async fn run(&self, job: &JobContext) -> Result<(), JobError> {
        self.runs.lock().unwrap().entry(job.id).or_default().push(job.attempt);
        job.log(&format!("attempt {}", job.attempt)).await?;
        let fail_until = job.parameters["fail_until"].as_i64().unwrap_or(0);
        if job.parameters["fatal"].as_bool() == Some(true) {
            return Err(JobError::Fatal("cannot be done".into()));
        }
        if job.attempt <= fail_until {
            return Err(JobError::Retry(format!("not yet ({})", job.attempt)));
        }
        if job.parameters["until_stopped"].as_bool() == Some(true) {
            while !job.stop_requested() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            return Err(JobError::Stopped);
        }
        Ok(())
    }
}

fn service(db: &Db, worker: &Arc<Counting>) -> Arc<JobService> {
    let mut s = JobService::new(db.clone(), fast());
    s.register(worker.clone());
    Arc::new(s)
}

async fn until_ended(db: &Db, id: i64) -> berth_db::jobs::JobRow {
    for _ in 0..300 {
        let job = db.job(id).await.unwrap().unwrap();
        if job.finished_at.is_some() {
            return job;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("job {id} did not end: {:?}", db.job(id).await.unwrap());
}

#[tokio::test]
async fn each_job_runs_once_across_replicas() {
    let t = open().await;
    let worker = Arc::new(Counting::default());
    let replicas: Vec<_> = (0..3).map(|_| service(&t.db, &worker)).collect();
    let mut ids = Vec::new();
    for _ in 0..30 {
        ids.push(replicas[0].enqueue("COUNTING", &serde_json::json!({}), 3).await.unwrap());
    }
    let runners: Vec<_> = replicas.iter().flat_map(|r| [r.clone().spawn(), r.clone().spawn()]).collect();
    for id in &ids {
        let job = until_ended(&t.db, *id).await;
        assert_eq!(job.status, status::SUCCESS);
        assert_eq!(job.attempts, 1);
        assert!(job.log.contains("attempt 1"), "{}", job.log);
    }
    for r in runners {
        r.abort();
    }
    let runs = worker.runs.lock().unwrap();
    assert_eq!(runs.len(), 30);
    assert!(runs.values().all(|attempts| attempts == &[1]), "a job ran twice: {runs:?}");
}

#[tokio::test]
async fn a_dead_holders_job_is_taken_over_when_its_lease_ends() {
    let t = open().await;
    let worker = Arc::new(Counting::default());
    let survivor = service(&t.db, &worker);
    let id = survivor.enqueue("COUNTING", &serde_json::json!({}), 3).await.unwrap();
    // A replica claims it and dies: no heartbeat, no end.
    let claimed = t.db.claim_job("dead-replica", &["COUNTING"], berth_db::now_millis(), 300).await.unwrap().unwrap();
    assert_eq!(claimed.id, id);
    assert_eq!(survivor.run_one().await.unwrap(), None, "held, and the lease is still good");
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(survivor.run_one().await.unwrap(), Some(id), "taken over");
    let job = t.db.job(id).await.unwrap().unwrap();
    assert_eq!((job.status.as_str(), job.attempts), (status::SUCCESS, 2));
    // What the dead one would still write is refused.
    assert!(!t.db.append_job_log(id, "dead-replica", "late\n").await.unwrap());
    assert!(!t.db.finish_job(id, "dead-replica", &berth_db::jobs::JobOutcome::Error).await.unwrap());
    assert_eq!(t.db.job(id).await.unwrap().unwrap().status, status::SUCCESS);
}

#[tokio::test]
async fn a_long_job_keeps_its_lease_by_heartbeat() {
    let t = open().await;
    struct Slow;
    #[async_trait]
    impl Worker for Slow {
        fn kind(&self) -> &'static str {
            "SLOW"
        }
        async fn run(&self, _job: &JobContext) -> Result<(), JobError> {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            Ok(())
        }
    }
    let mut a = JobService::new(t.db.clone(), fast());
    a.register(Arc::new(Slow));
    let a = Arc::new(a);
    let id = a.enqueue("SLOW", &serde_json::json!({}), 1).await.unwrap();
    let running = tokio::spawn({
        let a = a.clone();
        async move { a.run_one().await.unwrap() }
    });
    // Well past the 600 ms lease, another replica finds nothing to take over.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let claimed = t.db.claim_job("other", &["SLOW"], berth_db::now_millis(), 600).await.unwrap();
    assert!(claimed.is_none(), "the lease was renewed, so the job is not up for takeover");
    assert_eq!(running.await.unwrap(), Some(id));
    assert_eq!(t.db.job(id).await.unwrap().unwrap().status, status::SUCCESS);
}

#[tokio::test]
async fn failures_are_retried_with_backoff_and_fatal_ones_are_not() {
    let t = open().await;
    let worker = Arc::new(Counting::default());
    let s = service(&t.db, &worker);
    let flaky = s.enqueue("COUNTING", &serde_json::json!({"fail_until": 2}), 5).await.unwrap();
    let hopeless = s.enqueue("COUNTING", &serde_json::json!({"fail_until": 10}), 3).await.unwrap();
    let fatal = s.enqueue("COUNTING", &serde_json::json!({"fatal": true}), 5).await.unwrap();
    let runner = s.clone().spawn();
    let job = until_ended(&t.db, flaky).await;
    assert_eq!((job.status.as_str(), job.attempts), (status::SUCCESS, 3));
    assert!(job.log.contains("attempt 2 failed: not yet (2)"), "{}", job.log);
    let job = until_ended(&t.db, hopeless).await;
    assert_eq!((job.status.as_str(), job.attempts), (status::ERROR, 3), "no attempt beyond max_attempts");
    let job = until_ended(&t.db, fatal).await;
    assert_eq!((job.status.as_str(), job.attempts), (status::ERROR, 1));
    runner.abort();
    let runs = worker.runs.lock().unwrap();
    assert_eq!(runs[&flaky], [1, 2, 3]);
}

#[tokio::test]
async fn a_retry_is_not_claimed_before_its_backoff_ends() {
    let t = open().await;
    let id = t.db.enqueue_job("COUNTING", "{}", 3).await.unwrap();
    let now = berth_db::now_millis();
    t.db.claim_job("a", &["COUNTING"], now, 1000).await.unwrap().unwrap();
    let retry = berth_db::jobs::JobOutcome::Retry { run_after: now + 10_000 };
    assert!(t.db.finish_job(id, "a", &retry).await.unwrap());
    let job = t.db.job(id).await.unwrap().unwrap();
    assert_eq!((job.status.as_str(), job.finished_at), (status::PENDING, None));
    assert!(t.db.claim_job("b", &["COUNTING"], now + 9_999, 1000).await.unwrap().is_none());
    let again = t.db.claim_job("b", &["COUNTING"], now + 10_001, 1000).await.unwrap().unwrap();
    assert_eq!((again.id, again.attempts), (id, 2));
    // Other kinds are not this runner's.
    t.db.enqueue_job("OTHER", "{}", 1).await.unwrap();
    assert!(t.db.claim_job("b", &["COUNTING"], now + 10_500, 1000).await.unwrap().is_none());
}

#[tokio::test]
async fn a_stop_ends_a_pending_job_at_once_and_reaches_a_running_one() {
    let t = open().await;
    let worker = Arc::new(Counting::default());
    let s = service(&t.db, &worker);
    let pending = s.enqueue("COUNTING", &serde_json::json!({}), 1).await.unwrap();
    assert_eq!(t.db.request_job_stop(pending).await.unwrap(), Some(true));
    assert_eq!(t.db.job(pending).await.unwrap().unwrap().status, status::STOPPED);
    assert_eq!(t.db.request_job_stop(999_999).await.unwrap(), None);

    let long = s.enqueue("COUNTING", &serde_json::json!({"until_stopped": true}), 1).await.unwrap();
    let runner = s.clone().spawn();
    for _ in 0..100 {
        if t.db.job(long).await.unwrap().unwrap().status == status::RUNNING {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(t.db.request_job_stop(long).await.unwrap(), Some(true));
    let job = until_ended(&t.db, long).await;
    assert_eq!(job.status, status::STOPPED);
    runner.abort();
    assert!(!worker.runs.lock().unwrap().contains_key(&pending), "a stopped pending job never runs");
    // Ended jobs are pruned by count.
    assert_eq!(t.db.prune_jobs("COUNTING", 1, 0).await.unwrap(), 1);
    let (left, total) = t.db.jobs_of_kind("COUNTING", 10, 0).await.unwrap();
    assert_eq!((left.len(), total), (1, 1));
    assert_eq!(left[0].id, long);
}

/// A schedule fires once per scheduled time however many replicas look, queues its job with
/// the schedule's parameters and the trigger `SCHEDULE`, and not while paused.
#[tokio::test]
async fn a_schedule_fires_once_across_replicas() {
    let t = open().await;
    let db = &t.db;
    db.set_job_schedule("COUNTING", "Custom", "0 * * * * *", r#"{"n":1}"#).await.unwrap();
    let set_at = db.job_schedule("COUNTING").await.unwrap().unwrap().last_fired;
    let replicas: Vec<berth_jobs::scheduler::Scheduler> =
        (0..3).map(|_| berth_jobs::scheduler::Scheduler::new(db.clone())).collect();
    // Times are chosen from minute boundaries, never from the clock's second, so that what
    // fires does not depend on when the test runs. One second into the minute two minutes on:
    // one firing (the newest time owed), whoever looks.
    let minute = |t: i64| t - t.rem_euclid(60);
    let later = minute(set_at) + 121;
    let fired: Vec<Vec<i64>> = futures_util::future::join_all(replicas.iter().map(|r| r.tick(later)))
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let all: Vec<i64> = fired.into_iter().flatten().collect();
    assert_eq!(all.len(), 1, "{all:?}");
    let job = db.job(all[0]).await.unwrap().unwrap();
    assert_eq!(
        (job.kind.as_str(), job.parameters.as_str(), job.trigger.as_str()),
        ("COUNTING", r#"{"n":1}"#, "SCHEDULE")
    );
    assert!(replicas[0].tick(later).await.unwrap().is_empty(), "the same time fires once");
    assert!(replicas[0].tick(later + 30).await.unwrap().is_empty(), "no minute began since");
    db.pause_job_schedules(Some("COUNTING"), true).await.unwrap();
    assert!(replicas[1].tick(later + 600).await.unwrap().is_empty(), "paused");
    db.pause_job_schedules(Some("COUNTING"), false).await.unwrap();
    let resumed_at = db.job_schedule("COUNTING").await.unwrap().unwrap().last_fired;
    // Resumed: nothing owed within the resumed minute, one firing once the next one begins.
    let next_minute = minute(resumed_at) + 60;
    assert!(replicas[1].tick(next_minute - 1).await.unwrap().is_empty(), "nothing owed for the pause");
    assert_eq!(
        replicas[2].tick(next_minute + 1).await.unwrap().len() + replicas[1].tick(next_minute + 1).await.unwrap().len(),
        1
    );
    assert!(db.delete_job_schedule("COUNTING").await.unwrap());
    assert!(replicas[0].tick(resumed_at + 3600).await.unwrap().is_empty());
}

/// A started pool is listed with its heartbeat and runners, names its runners in the claims it
/// makes, counts its runs in Harbor's task metrics, and leaves the list when stopped; a paused
/// queue's jobs wait for its resumption, and a stopped queue's pending jobs end.
#[tokio::test]
async fn a_pool_is_listed_while_it_runs_and_queues_pause() {
    let t = open().await;
    let worker = Arc::new(Counting::default());
    let s = service(&t.db, &worker);
    let pool_id = s.pool_id().to_string();
    let succeeded = || berth_metrics::metrics().job_tasks.get(&["COUNTING", "Success"]).get();
    let before = succeeded();
    let pool = s.clone().start(2).await.unwrap();
    let pools = t.db.job_pools(0).await.unwrap();
    assert_eq!(pools.len(), 1);
    assert_eq!((pools[0].pool_id.as_str(), pools[0].concurrency), (pool_id.as_str(), 2));
    let queues = t.db.job_queues().await.unwrap();
    assert_eq!(queues.iter().map(|q| q.kind.as_str()).collect::<Vec<_>>(), ["COUNTING"], "made known at start");

    // A job held by the pool names the runner that holds it.
    let long = s.enqueue("COUNTING", &serde_json::json!({"until_stopped": true}), 1).await.unwrap();
    let runner = loop {
        if let Some(job) = t.db.running_jobs().await.unwrap().into_iter().find(|j| j.id == long) {
            break job.runner;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(runner == format!("{pool_id}-0") || runner == format!("{pool_id}-1"), "{runner}");
    t.db.request_job_stop(long).await.unwrap();
    assert_eq!(until_ended(&t.db, long).await.status, status::STOPPED);

    // Paused: due jobs wait; resumed: they run.
    t.db.set_job_queue_paused(Some("COUNTING"), true).await.unwrap();
    let waiting = s.enqueue("COUNTING", &serde_json::json!({}), 1).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(t.db.job(waiting).await.unwrap().unwrap().status, status::PENDING);
    let q = t.db.job_queues().await.unwrap().remove(0);
    assert!(q.paused && q.pending == 1 && q.oldest_due.is_some(), "{q:?}");
    t.db.set_job_queue_paused(None, false).await.unwrap();
    assert_eq!(until_ended(&t.db, waiting).await.status, status::SUCCESS);
    assert!(succeeded() > before, "the run is counted in harbor_jobservice_task_total");

    // Stopped: pending jobs end without running.
    t.db.set_job_queue_paused(None, true).await.unwrap();
    let doomed = s.enqueue("COUNTING", &serde_json::json!({}), 1).await.unwrap();
    assert_eq!(t.db.stop_pending_jobs(Some("COUNTING")).await.unwrap(), 1);
    assert_eq!(t.db.job(doomed).await.unwrap().unwrap().status, status::STOPPED);
    assert!(!worker.runs.lock().unwrap().contains_key(&doomed));

    pool.stop().await;
    assert!(t.db.job_pools(0).await.unwrap().is_empty(), "a stopped pool leaves the list");
}

/// A schedule from configuration, set again by each replica at start, keeps its last firing
/// while its cron and parameters are unchanged, and is replaced when they change.
#[tokio::test]
async fn a_configured_schedule_set_again_keeps_its_last_firing() {
    let t = open().await;
    let db = &t.db;
    assert!(db.ensure_job_schedule("COUNTING", "Custom", "0 0 * * * *", "{}").await.unwrap());
    let fired = berth_jobs::scheduler::Scheduler::new(db.clone());
    let first = db.job_schedule("COUNTING").await.unwrap().unwrap();
    let hour = first.last_fired - first.last_fired.rem_euclid(3600) + 3600;
    assert_eq!(fired.tick(hour).await.unwrap().len(), 1);
    assert!(!db.ensure_job_schedule("COUNTING", "Custom", "0 0 * * * *", "{}").await.unwrap(), "a restart");
    assert_eq!(db.job_schedule("COUNTING").await.unwrap().unwrap().last_fired, hour, "remembered");
    assert!(db.ensure_job_schedule("COUNTING", "Custom", "0 */5 * * * *", "{}").await.unwrap(), "reconfigured");
    let changed = db.job_schedule("COUNTING").await.unwrap().unwrap();
    assert_eq!((changed.cron.as_str(), changed.id), ("0 */5 * * * *", first.id));
}

/// Asks for a `COUNTING` job for each project created.
struct OnProjectCreated;

impl berth_db::jobs::JobTrigger for OnProjectCreated {
    fn jobs_for(&self, event: &berth_db::AuditEvent) -> Vec<berth_db::jobs::JobRequest> {
        if event.event_type() != "create_project" {
            return Vec::new();
        }
        let parameters = serde_json::json!({ "project": event.resource }).to_string();
        vec![berth_db::jobs::JobRequest { kind: "COUNTING".into(), parameters, max_attempts: 1 }]
    }
}

#[tokio::test]
async fn a_change_commits_with_the_jobs_it_triggers_and_a_refused_one_with_none() {
    let t = open().await;
    // The audit log keeps no record of project creation: the job follows the change anyway.
    t.db.configure_audit(berth_db::AuditSettings { disabled: vec!["create_project".into()], ..Default::default() });
    t.db.add_job_trigger(Arc::new(OnProjectCreated));
    let owner =
        t.db.create_user(&berth_db::NewUser {
            username: "owner",
            email: None,
            realname: "",
            comment: "",
            password_hash: "x",
            sysadmin: false,
        })
        .await
        .unwrap();
    t.db.create_project("alpha", owner, &[]).await.unwrap();
    // Refused (the name is taken): rolled back, and with it any job.
    assert!(t.db.create_project("alpha", owner, &[]).await.is_err());
    let (jobs, total) = t.db.jobs_of_kind("COUNTING", 10, 0).await.unwrap();
    assert_eq!(total, 1, "{jobs:?}");
    assert_eq!(jobs[0].trigger, berth_db::jobs::TRIGGER_EVENT);
    assert_eq!(serde_json::from_str::<serde_json::Value>(&jobs[0].parameters).unwrap()["project"], "alpha");
    // Creating a user triggers nothing.
    assert_eq!(t.db.job_kinds().await.unwrap(), vec!["COUNTING".to_string()]);

    let counting = Arc::new(Counting::default());
    let mut service = JobService::new(t.db.clone(), fast());
    service.register(counting.clone());
    assert_eq!(service.run_one().await.unwrap(), Some(jobs[0].id));
    assert_eq!(until_ended(&t.db, jobs[0].id).await.status, status::SUCCESS);
}
