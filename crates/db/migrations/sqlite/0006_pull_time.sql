-- Harbor shows when each artifact was last pulled (null: never).
ALTER TABLE manifests ADD COLUMN pull_time BIGINT;
