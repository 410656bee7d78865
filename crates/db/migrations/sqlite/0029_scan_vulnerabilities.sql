-- Each vulnerability a successful scan found (one row per finding: CVE, package, version),
-- written with its report's end and gone with its report: what Harbor's security hub sums
-- and lists (`/security/summary`, `/security/vul`) across every artifact without reading
-- reports. severity_rank orders severities (Critical 5 .. None 0).
CREATE TABLE scan_vulnerabilities (
    id INTEGER PRIMARY KEY,
    report_id BIGINT NOT NULL REFERENCES scan_reports(id) ON DELETE CASCADE,
    cve_id TEXT NOT NULL,
    package TEXT NOT NULL,
    version TEXT NOT NULL,
    fixed_version TEXT NOT NULL DEFAULT '',
    severity TEXT NOT NULL,
    severity_rank BIGINT NOT NULL,
    cvss_v3 REAL,
    description TEXT NOT NULL DEFAULT '',
    links TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX scan_vulnerabilities_by_report ON scan_vulnerabilities(report_id);
CREATE INDEX scan_vulnerabilities_by_cve ON scan_vulnerabilities(cve_id);
