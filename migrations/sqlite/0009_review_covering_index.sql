-- Findings of a review period by severity and source, read from the index alone.
DROP INDEX nonconformities_created;
CREATE INDEX nonconformities_created ON nonconformities (created_at, severity, source);
