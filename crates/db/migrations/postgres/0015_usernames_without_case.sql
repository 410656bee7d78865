-- Usernames are unique without regard to (ASCII) case: `Admin` beside `admin` is one account
-- to a person reading the audit log, and must be one here. An installation holding two names
-- that differ only in case fails this migration and must rename one of them first.
CREATE UNIQUE INDEX users_username_without_case ON users (lower(username));
