//! What a policy retains of one repository, decided without touching anything: the same
//! decision serves a dry run (which lists it) and a run (which carries it out).
//!
//! As Harbor: each enabled rule whose repository selectors select the repository filters the
//! candidates by its tag selectors, then keeps what its template keeps; the union of what the
//! rules keep is retained (Harbor's algorithm `or`), the rest is removed. A repository no rule
//! selects is left alone. Immutable tags are always retained.
//!
//! Artifact mode (Harbor's): a candidate is an artifact with all its tags; a tag selector
//! `matches` selects it when one of its tags matches, `excludes` when one of its tags does
//! not; an untagged artifact only by a selector with `{"untagged":true}`. Per-tag mode (beyond
//! Harbor): a candidate is one tag of an artifact (with the tag's own push time), so a tag no
//! rule retains is removed even when another tag of its artifact is retained; an artifact left
//! with no tag is removed with the last of them.

use std::collections::BTreeSet;

use crate::policy::{Rule, Template};

const DAY_MS: i64 = 86_400_000;

/// An artifact of the repository.
#[derive(Debug, Clone)]
pub struct Artifact {
    pub digest: String,
    /// Harbor's type (`IMAGE`, `CHART`, ...), for the table.
    pub kind: String,
    /// Each tag with the time it was last pushed (ms).
    pub tags: Vec<(String, i64)>,
    /// Milliseconds since the epoch.
    pub pushed: i64,
    pub pulled: Option<i64>,
    /// Which of `tags` are immutable.
    pub immutable: Vec<bool>,
}

/// What is decided for one candidate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub digest: String,
    /// The candidate's tags (one in per-tag mode; none for an untagged artifact).
    pub tags: Vec<String>,
    pub kind: String,
    pub pushed: i64,
    pub pulled: Option<i64>,
    pub verdict: Verdict,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// A rule keeps it.
    Retain,
    /// No rule keeps it, but an immutable tag does.
    Immutable,
    /// Removed: the tag (per-tag mode, its artifact keeping others) or the artifact.
    RemoveTag,
    RemoveArtifact,
}

impl Verdict {
    pub fn retained(self) -> bool {
        matches!(self, Verdict::Retain | Verdict::Immutable)
    }
}

/// One thing a rule can select.
struct Candidate<'a> {
    artifact: &'a Artifact,
    /// Indexes into `artifact.tags`: all of them (artifact mode) or one (per-tag mode).
    tags: Vec<usize>,
    pushed: i64,
}

impl Candidate<'_> {
    fn tag_names(&self) -> impl Iterator<Item = &str> {
        self.tags.iter().map(|&i| self.artifact.tags[i].0.as_str())
    }

    fn immutable(&self) -> bool {
        self.tags.iter().any(|&i| self.artifact.immutable.get(i).copied().unwrap_or(false))
    }

    fn active(&self) -> i64 {
        self.pushed.max(self.artifact.pulled.unwrap_or(0))
    }
}

/// Whether `rule` selects the candidate by its tag selectors (all of them, in turn).
fn selected_by_tags(rule: &Rule, c: &Candidate<'_>) -> bool {
    if c.tags.is_empty() {
        return rule.untagged;
    }
    rule.tag_selectors.iter().all(|s| {
        let mut names = c.tag_names();
        if s.matches { names.any(|t| s.glob.is_match(t)) } else { names.any(|t| !s.glob.is_match(t)) }
    })
}

/// The indexes of `candidates` that `rule` keeps.
fn kept_by(rule: &Rule, candidates: &[Candidate<'_>], now: i64) -> Vec<usize> {
    let mut selected: Vec<usize> = (0..candidates.len()).filter(|&i| selected_by_tags(rule, &candidates[i])).collect();
    let newest_first = |key: &dyn Fn(&Candidate<'_>) -> i64, selected: &mut Vec<usize>| {
        selected.sort_by(|&a, &b| {
            let (ca, cb) = (&candidates[a], &candidates[b]);
            key(cb).cmp(&key(ca)).then_with(|| ca.artifact.digest.cmp(&cb.artifact.digest))
        });
    };
    let n = rule.parameter;
    match rule.template {
        Template::Always => selected,
        Template::LatestPushedK => {
            newest_first(&|c| c.pushed, &mut selected);
            selected.truncate(n as usize);
            selected
        }
        Template::LatestPulledN => {
            newest_first(&|c| c.artifact.pulled.unwrap_or(0), &mut selected);
            selected.truncate(n as usize);
            selected
        }
        Template::LatestActiveK => {
            newest_first(&|c| c.active(), &mut selected);
            selected.truncate(n as usize);
            selected
        }
        Template::NDaysSinceLastPush | Template::LastXDays => {
            selected.retain(|&i| candidates[i].pushed >= now - n * DAY_MS);
            selected
        }
        Template::NDaysSinceLastPull => {
            selected.retain(|&i| candidates[i].artifact.pulled.is_some_and(|p| p >= now - n * DAY_MS));
            selected
        }
    }
}

/// What `rules` (those selecting the repository; none: nothing to decide) retain of
/// `artifacts`, at `now` (ms), in artifact or per-tag mode.
pub fn decide(rules: &[&Rule], artifacts: &[Artifact], per_tag: bool, now: i64) -> Vec<Decision> {
    if rules.is_empty() {
        return Vec::new();
    }
    let mut candidates = Vec::new();
    for a in artifacts {
        if per_tag && !a.tags.is_empty() {
            for (i, (_, at)) in a.tags.iter().enumerate() {
                candidates.push(Candidate { artifact: a, tags: vec![i], pushed: *at });
            }
        } else {
            candidates.push(Candidate { artifact: a, tags: (0..a.tags.len()).collect(), pushed: a.pushed });
        }
    }
    let kept: BTreeSet<usize> = rules.iter().flat_map(|r| kept_by(r, &candidates, now)).collect();
    let mut decisions: Vec<Decision> = candidates
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let verdict = if kept.contains(&i) {
                Verdict::Retain
            } else if c.immutable() {
                Verdict::Immutable
            } else if per_tag && !c.tags.is_empty() {
                Verdict::RemoveTag
            } else {
                Verdict::RemoveArtifact
            };
            Decision {
                digest: c.artifact.digest.clone(),
                tags: c.tag_names().map(String::from).collect(),
                kind: c.artifact.kind.clone(),
                pushed: c.pushed,
                pulled: c.artifact.pulled,
                verdict,
            }
        })
        .collect();
    if per_tag {
        // An artifact none of whose tags stays goes with its last tag.
        // (The artifact's other removed tags go with it: their rows say `RemoveTag`.)
        let keeping: BTreeSet<String> =
            decisions.iter().filter(|d| d.verdict.retained()).map(|d| d.digest.clone()).collect();
        let mut last_seen: std::collections::BTreeMap<String, usize> = Default::default();
        for (i, d) in decisions.iter().enumerate() {
            if d.verdict == Verdict::RemoveTag && !keeping.contains(&d.digest) {
                last_seen.insert(d.digest.clone(), i);
            }
        }
        for i in last_seen.into_values() {
            decisions[i].verdict = Verdict::RemoveArtifact;
        }
    }
    decisions
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::compile_rule_for_test as rule;

    const NOW: i64 = 100 * DAY_MS;

    fn artifact(digest: &str, tags: &[&str], pushed_days_ago: i64, pulled_days_ago: Option<i64>) -> Artifact {
        let pushed = NOW - pushed_days_ago * DAY_MS;
        Artifact {
            digest: digest.into(),
            kind: "IMAGE".into(),
            tags: tags.iter().map(|t| (t.to_string(), pushed)).collect(),
            pushed,
            pulled: pulled_days_ago.map(|d| NOW - d * DAY_MS),
            immutable: vec![false; tags.len()],
        }
    }

    fn removed(decisions: &[Decision]) -> Vec<String> {
        decisions
            .iter()
            .filter(|d| !d.verdict.retained())
            .map(|d| format!("{}{}", d.digest, d.tags.iter().map(|t| format!(":{t}")).collect::<String>()))
            .collect()
    }

    fn repo() -> Vec<Artifact> {
        vec![
            artifact("a", &["v1"], 30, Some(1)),
            artifact("b", &["v2", "stable"], 20, None),
            artifact("c", &["v3"], 10, Some(25)),
            artifact("d", &[], 5, None),
            artifact("e", &["dev-1"], 1, None),
        ]
    }

    #[test]
    fn each_template_keeps_what_harbor_keeps() {
        let cases: &[(&str, i64, &[&str])] = &[
            ("latestPushedK", 2, &["a:v1", "b:v2:stable", "d"]),
            ("latestPulledN", 1, &["b:v2:stable", "c:v3", "d", "e:dev-1"]),
            ("latestActiveK", 2, &["b:v2:stable", "c:v3", "d"]),
            ("nDaysSinceLastPush", 15, &["a:v1", "b:v2:stable", "d"]),
            ("lastXDays", 15, &["a:v1", "b:v2:stable", "d"]),
            ("nDaysSinceLastPull", 7, &["b:v2:stable", "c:v3", "d", "e:dev-1"]),
            ("always", 0, &["d"]),
        ];
        for (template, n, expected) in cases {
            let r = rule(template, *n, "**", true, false);
            assert_eq!(removed(&decide(&[&r], &repo(), false, NOW)), *expected, "{template}");
        }
    }

    #[test]
    fn selectors_untagged_and_the_union_of_rules() {
        let dev = rule("always", 0, "dev-*", true, false);
        assert_eq!(removed(&decide(&[&dev], &repo(), false, NOW)), ["a:v1", "b:v2:stable", "c:v3", "d"]);
        let not_dev = rule("always", 0, "dev-*", false, true);
        assert_eq!(removed(&decide(&[&not_dev], &repo(), false, NOW)), ["e:dev-1"]);
        // `excludes` selects an artifact with any tag outside the pattern.
        let not_stable = rule("always", 0, "stable", false, false);
        assert_eq!(removed(&decide(&[&not_stable], &repo(), false, NOW)), ["d"]);
        let union = decide(&[&dev, &rule("latestPushedK", 1, "v*", true, false)], &repo(), false, NOW);
        assert_eq!(removed(&union), ["a:v1", "b:v2:stable", "d"]);
        assert!(decide(&[], &repo(), false, NOW).is_empty(), "no rule: nothing decided");
    }

    #[test]
    fn immutable_tags_are_kept() {
        let mut artifacts = repo();
        artifacts[0].immutable = vec![true];
        let d = decide(&[&rule("latestPushedK", 1, "**", true, false)], &artifacts, false, NOW);
        assert_eq!(d[0].verdict, Verdict::Immutable);
        assert_eq!(removed(&d), ["b:v2:stable", "c:v3", "d"]);
    }

    #[test]
    fn per_tag_mode_removes_tags_and_the_artifacts_left_bare() {
        let v = rule("always", 0, "v*", true, false);
        let d = decide(&[&v], &repo(), true, NOW);
        assert_eq!(removed(&d), ["b:stable", "d", "e:dev-1"]);
        let verdict = |digest: &str, tag: &str| {
            d.iter().find(|x| x.digest == digest && x.tags.first().map(String::as_str) == Some(tag)).unwrap().verdict
        };
        assert_eq!(verdict("b", "stable"), Verdict::RemoveTag, "b keeps v2");
        assert_eq!(verdict("e", "dev-1"), Verdict::RemoveArtifact, "e keeps nothing");
        // A tag's own push time counts: a new tag on an old artifact is recent.
        let mut artifacts = repo();
        artifacts[0].tags.push(("latest".into(), NOW));
        artifacts[0].immutable.push(false);
        let d = decide(&[&rule("latestPushedK", 1, "**", true, false)], &artifacts, true, NOW);
        assert_eq!(d.iter().filter(|x| x.verdict.retained()).map(|x| x.tags.join(",")).collect::<Vec<_>>(), ["latest"]);
    }
}
