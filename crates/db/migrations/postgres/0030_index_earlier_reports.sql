-- Reports that ended before scan_vulnerabilities existed get their rows from a one-off job
-- (berth-scan's SCAN_REPORT_INDEX), queued here so that exactly one runs however many
-- replicas start, and only where there is something to index.
INSERT INTO jobs (kind, parameters, status, attempts, max_attempts, run_after, created_at, updated_at)
SELECT 'SCAN_REPORT_INDEX', '{}', 'Pending', 0, 5, 0, 0, 0
WHERE EXISTS (SELECT 1 FROM scan_reports WHERE status = 'Success');
