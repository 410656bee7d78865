//! Harbor's schedules: six-field cron strings (`sec min hour day-of-month month day-of-week`,
//! UTC; day of month and day of week, when both are restricted, match when either does), and
//! the presets `Hourly`, `Daily`, `Weekly` (`Custom` names its cron; `Manual` and `None` have
//! none). Evaluated with `croner`.

use chrono::{DateTime, Utc};
use croner::parser::{CronParser, Seconds, Year};

/// A cron string that is not six fields Harbor would accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cron {0:?} is not six fields of sec min hour dom month dow")]
pub struct InvalidCron(pub String);

/// A parsed six-field cron.
#[derive(Debug, Clone)]
pub struct Cron(croner::Cron);

impl Cron {
    pub fn parse(expr: &str) -> Result<Cron, InvalidCron> {
        let parser = CronParser::builder().seconds(Seconds::Required).year(Year::Disallowed).build();
        parser.parse(expr.trim()).map(Cron).map_err(|_| InvalidCron(expr.to_string()))
    }

    /// The first time it fires strictly after `after` (seconds since the epoch), if it ever
    /// does.
    pub fn next_after(&self, after: i64) -> Option<i64> {
        let start: DateTime<Utc> = DateTime::from_timestamp(after, 0)?;
        self.0.find_next_occurrence(&start, false).ok().map(|t| t.timestamp())
    }

    /// Whether it fires at some second in `from..=to`.
    pub fn fires_within(&self, from: i64, to: i64) -> bool {
        self.next_after(from - 1).is_some_and(|t| t <= to)
    }
}

/// The cron of Harbor's schedule type `kind` (`cron` for `Custom`, or `Schedule` as older
/// clients say); `None` for `Manual` and `None`, which fire never.
pub fn cron_of(kind: &str, cron: Option<&str>) -> Result<Option<String>, ScheduleError> {
    Ok(Some(match kind {
        "Hourly" => "0 0 * * * *".into(),
        "Daily" => "0 0 0 * * *".into(),
        "Weekly" => "0 0 0 * * 0".into(),
        "Custom" | "Schedule" => {
            let cron = cron.map(str::trim).filter(|c| !c.is_empty()).ok_or(ScheduleError::MissingCron)?;
            Cron::parse(cron)?;
            cron.to_string()
        }
        "Manual" | "None" => return Ok(None),
        other => return Err(ScheduleError::UnknownType(other.to_string())),
    }))
}

/// Why a schedule is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error(transparent)]
    Cron(#[from] InvalidCron),
    #[error("a Custom schedule needs a cron expression")]
    MissingCron,
    #[error("schedule type {0:?} is not Hourly, Daily, Weekly, Custom, Manual or None")]
    UnknownType(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2023-11-14T22:13:20Z, a Tuesday.
    const T: i64 = 1_700_000_000;

    fn fires_at(expr: &str, t: i64) -> bool {
        Cron::parse(expr).unwrap().fires_within(t, t)
    }

    #[test]
    fn harbors_six_fields() {
        assert!(fires_at("* * * * * *", T));
        assert!(fires_at("20 13 22 * * *", T));
        assert!(!fires_at("0 0 * * * *", T));
        assert!(fires_at("*/10 */13 20-23 14 11 *", T));
        assert!(fires_at("20 13 22 * * 2", T));
        assert!(!fires_at("20 13 22 * * 0,6", T));
        assert!(fires_at("20 13 22 1 * 2", T), "day of month or of week");
        assert!(fires_at("0 0 0 * * 7", 1_699_747_200), "Sunday as 7");
        for bad in ["* * * * *", "60 * * * * *", "a * * * * *", "5-1 * * * * *", "* * * * * * 2024", "every minute"] {
            assert!(Cron::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn next_times() {
        assert_eq!(Cron::parse("0 0 * * * *").unwrap().next_after(T), Some(1_700_002_800));
        assert_eq!(Cron::parse("*/10 * * * * *").unwrap().next_after(T), Some(1_700_000_010));
        assert_eq!(Cron::parse("0 0 0 30 2 *").unwrap().next_after(T), None, "February 30 never comes");
    }

    #[test]
    fn presets() {
        assert_eq!(cron_of("Hourly", None).unwrap().as_deref(), Some("0 0 * * * *"));
        assert_eq!(cron_of("Weekly", Some("ignored")).unwrap().as_deref(), Some("0 0 0 * * 0"));
        assert_eq!(cron_of("Custom", Some(" 0 30 2 * * * ")).unwrap().as_deref(), Some("0 30 2 * * *"));
        assert_eq!(cron_of("Manual", None).unwrap(), None);
        assert_eq!(cron_of("Custom", None), Err(ScheduleError::MissingCron));
        assert!(matches!(cron_of("Custom", Some("bad")), Err(ScheduleError::Cron(_))));
        assert!(matches!(cron_of("Sometimes", None), Err(ScheduleError::UnknownType(_))));
    }
}
