-- The review inputs read numbers by period: of findings logged, findings closed and actions
-- done. SQLite's indexes carry the row's number (its rowid); PostgreSQL's must be told to, or
-- every row found in the index is fetched from the table as well.
DROP INDEX nonconformities_created;
CREATE INDEX nonconformities_created ON nonconformities (created_at, severity, source) INCLUDE (number);
DROP INDEX nonconformities_closed;
CREATE INDEX nonconformities_closed ON nonconformities (closed_at) INCLUDE (number);
DROP INDEX corrective_actions_done;
CREATE INDEX corrective_actions_done ON corrective_actions (status, updated_at) INCLUDE (number);
