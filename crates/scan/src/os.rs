//! The operating system of an image, from `os-release` (and its older stand-ins), and the OSV
//! ecosystem its packages belong to.

/// What `os-release` says, reduced to what matching needs.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Os {
    /// `ID`: `debian`, `ubuntu`, `alpine`, `rhel`, `rocky`, `almalinux`, `fedora`, `amzn`,
    /// `sles`, `opensuse-leap`, ...
    pub id: String,
    /// `VERSION_ID`: `12`, `22.04`, `3.20.3`, `9.4`.
    pub version_id: String,
    /// `PRETTY_NAME`, for reports.
    pub pretty_name: String,
}

/// Reads `os-release` (`KEY=value` lines, values maybe quoted). `None` without an `ID`.
pub fn parse_os_release(text: &str) -> Option<Os> {
    let mut id = None;
    let mut version_id = String::new();
    let mut pretty_name = String::new();
    for line in text.lines() {
        let Some((key, value)) = line.trim().split_once('=') else { continue };
        let value = value.trim().trim_matches(|c| c == '"' || c == '\'').to_string();
        match key.trim() {
            "ID" => id = Some(value.to_ascii_lowercase()),
            "VERSION_ID" => version_id = value,
            "PRETTY_NAME" => pretty_name = value,
            _ => {}
        }
    }
    Some(Os { id: id.filter(|i| !i.is_empty())?, version_id, pretty_name })
}

impl Os {
    /// The OSV ecosystem of its packages, with the release advisories are scoped by
    /// (`Debian:12`, `Alpine:v3.20`, `Ubuntu:22.04`, `Red Hat:9`); `None` for a system whose
    /// packages we have no feed for.
    pub fn ecosystem(&self) -> Option<String> {
        let major = self.version_id.split('.').next().unwrap_or("");
        let major_minor = self.version_id.split('.').take(2).collect::<Vec<_>>().join(".");
        Some(match self.id.as_str() {
            "debian" => format!("Debian:{major}"),
            "ubuntu" => format!("Ubuntu:{}", self.version_id),
            "alpine" => format!("Alpine:v{major_minor}"),
            "rhel" | "centos" => format!("Red Hat:{major}"),
            "rocky" => format!("Rocky Linux:{major}"),
            "almalinux" => format!("AlmaLinux:{major}"),
            "opensuse-leap" => format!("openSUSE:Leap {}", self.version_id),
            "sles" => format!("SUSE:Linux Enterprise Server {major}"),
            "wolfi" => "Wolfi".to_string(),
            "chainguard" => "Chainguard".to_string(),
            _ => return None,
        })
    }
}
