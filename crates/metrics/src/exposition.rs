//! Writing metric families in either text format.

use std::fmt::Write;

/// The exposition format a scraper asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Prometheus' classic text format, version 0.0.4.
    Text,
    /// OpenMetrics 1.0.0.
    OpenMetrics,
}

impl Format {
    /// The format that an `Accept` header asks for: OpenMetrics only when it is named.
    pub fn from_accept(accept: Option<&str>) -> Format {
        match accept {
            Some(a) if a.contains("application/openmetrics-text") => Format::OpenMetrics,
            _ => Format::Text,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Text => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Named without `_total`; its samples carry the suffix.
    Counter,
    Gauge,
    Histogram,
    Summary,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
            Kind::Summary => "summary",
        }
    }
}

/// A number as both formats spell it.
pub trait SampleValue {
    fn write_to(&self, out: &mut String);
}

impl SampleValue for u64 {
    fn write_to(&self, out: &mut String) {
        let _ = write!(out, "{self}");
    }
}

impl SampleValue for i64 {
    fn write_to(&self, out: &mut String) {
        let _ = write!(out, "{self}");
    }
}

impl SampleValue for f64 {
    fn write_to(&self, out: &mut String) {
        if self.is_nan() {
            out.push_str("NaN");
        } else if self.is_infinite() {
            out.push_str(if *self > 0.0 { "+Inf" } else { "-Inf" });
        } else {
            let _ = write!(out, "{self}");
        }
    }
}

/// Writes families one after another; [`Encoder::finish`] closes the exposition.
pub struct Encoder {
    out: String,
    format: Format,
}

impl Encoder {
    pub fn new(format: Format) -> Encoder {
        Encoder { out: String::with_capacity(16 * 1024), format }
    }

    pub fn format(&self) -> Format {
        self.format
    }

    /// The `# HELP` and `# TYPE` lines of a family. A counter's `name` is without `_total`.
    pub fn header(&mut self, name: &str, help: &str, kind: Kind) {
        let suffix = if kind == Kind::Counter && self.format == Format::Text { "_total" } else { "" };
        let _ = writeln!(self.out, "# HELP {name}{suffix} {}", escape_help(help));
        let _ = writeln!(self.out, "# TYPE {name}{suffix} {}", kind.as_str());
    }

    /// One sample line: `name` + `suffix`, the labels (names paired with values, then `extra`),
    /// and the value.
    pub fn sample(
        &mut self,
        name: &str,
        suffix: &str,
        labels: &[&str],
        values: &[String],
        extra: Option<(&str, &str)>,
        value: impl SampleValue,
    ) {
        self.out.push_str(name);
        self.out.push_str(suffix);
        if !labels.is_empty() || extra.is_some() {
            self.out.push('{');
            let mut first = true;
            let pairs = labels.iter().zip(values.iter().map(String::as_str)).chain(extra.iter().map(|(k, v)| (k, *v)));
            for (k, v) in pairs {
                if !first {
                    self.out.push(',');
                }
                first = false;
                self.out.push_str(k);
                self.out.push_str("=\"");
                escape_label_into(v, &mut self.out);
                self.out.push('"');
            }
            self.out.push('}');
        }
        self.out.push(' ');
        value.write_to(&mut self.out);
        self.out.push('\n');
    }

    /// A gauge family written at once from values computed by the caller.
    pub fn gauge_family<V: SampleValue + Copy>(
        &mut self,
        name: &str,
        help: &str,
        labels: &[&str],
        samples: &[(Vec<String>, V)],
    ) {
        self.header(name, help, Kind::Gauge);
        for (values, v) in samples {
            self.sample(name, "", labels, values, None, *v);
        }
    }

    pub fn finish(mut self) -> String {
        if self.format == Format::OpenMetrics {
            self.out.push_str("# EOF\n");
        }
        self.out
    }
}

fn escape_help(help: &str) -> String {
    help.replace('\\', "\\\\").replace('\n', "\\n")
}

fn escape_label_into(v: &str, out: &mut String) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_named_by_format_and_labels_escaped() {
        let mut e = Encoder::new(Format::Text);
        e.header("x_requests", "Requests.\nAll of them.", Kind::Counter);
        e.sample("x_requests", "_total", &["path"], &["a\"b\\c\nd".to_string()], None, 3u64);
        let text = e.finish();
        assert_eq!(
            text,
            "# HELP x_requests_total Requests.\\nAll of them.\n# TYPE x_requests_total counter\n\
             x_requests_total{path=\"a\\\"b\\\\c\\nd\"} 3\n"
        );
        let mut e = Encoder::new(Format::OpenMetrics);
        e.header("x_requests", "Requests.", Kind::Counter);
        e.sample("x_requests", "_total", &[], &[], Some(("le", "+Inf")), f64::INFINITY);
        assert_eq!(
            e.finish(),
            "# HELP x_requests Requests.\n# TYPE x_requests counter\nx_requests_total{le=\"+Inf\"} +Inf\n# EOF\n"
        );
    }

    #[test]
    fn openmetrics_only_when_asked_for() {
        assert_eq!(Format::from_accept(None), Format::Text);
        assert_eq!(Format::from_accept(Some("text/plain;version=0.0.4")), Format::Text);
        assert_eq!(
            Format::from_accept(Some("application/openmetrics-text;version=1.0.0,text/plain;q=0.5")),
            Format::OpenMetrics
        );
    }
}
