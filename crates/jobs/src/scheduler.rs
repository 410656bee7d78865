//! Fires the standing schedules (`berth_db::schedules`): every replica looks every few
//! seconds; a scheduled second is claimed in the database with the job it queues, so it fires
//! once per cluster.

use std::time::Duration;

use berth_db::{Db, DbError};

use crate::schedule::Cron;

/// How far back a replica looks for a missed scheduled time (a cluster down longer fires once,
/// for the newest).
const MOST_CATCH_UP_SECONDS: i64 = 3600;
/// Attempts a scheduled job gets.
pub const SCHEDULED_ATTEMPTS: i64 = 3;

#[derive(Clone)]
pub struct Scheduler {
    db: Db,
}

impl Scheduler {
    pub fn new(db: Db) -> Scheduler {
        Scheduler { db }
    }

    /// Fires what is due at `now` (seconds since the epoch); the jobs it queued.
    pub async fn tick(&self, now: i64) -> Result<Vec<i64>, DbError> {
        let mut fired = Vec::new();
        // Harbor pauses every schedule at once by pausing the scheduler's queue.
        if self.db.job_queue_paused(berth_db::job_queues::SCHEDULER_QUEUE).await? {
            return Ok(fired);
        }
        for s in self.db.job_schedules().await? {
            if s.paused {
                continue;
            }
            let Ok(cron) = Cron::parse(&s.cron) else { continue };
            let from = s.last_fired.max(now - MOST_CATCH_UP_SECONDS) + 1;
            if !cron.fires_within(from, now) {
                continue;
            }
            if let Some(id) = self
                .db
                .fire_job_schedule((&s.job_type, s.vendor_id), s.last_fired, now, &s.parameters, SCHEDULED_ATTEMPTS)
                .await?
            {
                tracing::info!(job = id, kind = %s.job_type, "scheduled job queued");
                fired.push(id);
            }
        }
        Ok(fired)
    }

    /// Looks every `every` for as long as the process runs.
    pub fn spawn(self, every: Duration) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(every);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                if let Err(e) = self.tick(berth_db::now_millis() / 1000).await {
                    tracing::warn!(error = %e, "the scheduler could not look at its schedules");
                }
            }
        })
    }
}
