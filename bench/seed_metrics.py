"""Adds projects, repositories and artifacts straight into a stopped Berth's SQLite database
(through its own triggers, which keep the counters /metrics reads), faster than pushing them:
the scenario measures the scrape, not the pushes. Arguments: database path, projects,
repositories per project, artifacts per repository."""

import hashlib
import sqlite3
import sys
import time


def main() -> None:
    path = sys.argv[1]
    projects, repos, artifacts = (int(a) for a in sys.argv[2:5])
    now = int(time.time() * 1000)
    db = sqlite3.connect(path)
    db.execute("PRAGMA foreign_keys = ON")
    owner = db.execute("SELECT id FROM users WHERE username = 'admin'").fetchone()[0]
    n = 0
    for p in range(projects):
        name = f"scrape{p:04d}"
        cur = db.execute(
            "INSERT INTO projects (name, owner_id, created_at, updated_at) VALUES (?, ?, ?, ?)", (name, owner, now, now)
        )
        project_id = cur.lastrowid
        db.execute(
            "INSERT INTO project_metadata (project_id, name, value) VALUES (?, 'public', ?)",
            (project_id, "true" if p % 2 else "false"),
        )
        for r in range(repos):
            cur = db.execute(
                "INSERT INTO repositories (name, project_id, created_at, updated_at) VALUES (?, ?, ?, ?)",
                (f"{name}/app{r}", project_id, now, now),
            )
            repo_id = cur.lastrowid
            rows = []
            for _ in range(artifacts):
                digest = "sha256:" + hashlib.sha256(str(n).encode()).hexdigest()
                n += 1
                rows.append((repo_id, digest, "application/vnd.oci.image.manifest.v1+json", 500,
                             "application/vnd.oci.image.config.v1+json", now))
            db.executemany(
                "INSERT INTO manifests (repository_id, digest, media_type, size, artifact_type, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                rows,
            )
        db.commit()
    print(n)


if __name__ == "__main__":
    main()
