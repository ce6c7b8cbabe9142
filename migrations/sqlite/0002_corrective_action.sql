-- The clause 10.2 cycle: analysis, corrective actions, effectiveness reviews, closure.
ALTER TABLE nonconformities ADD COLUMN consequences TEXT;
ALTER TABLE nonconformities ADD COLUMN similar_at_logging TEXT NOT NULL DEFAULT '[]';
ALTER TABLE nonconformities ADD COLUMN recurrence_of TEXT NOT NULL DEFAULT '[]';
ALTER TABLE nonconformities ADD COLUMN analysis TEXT;
ALTER TABLE nonconformities ADD COLUMN action_needed INTEGER;
ALTER TABLE nonconformities ADD COLUMN round INTEGER NOT NULL DEFAULT 1;
ALTER TABLE nonconformities ADD COLUMN isms_changes TEXT;
ALTER TABLE nonconformities ADD COLUMN closed_at TEXT;
ALTER TABLE nonconformities ADD COLUMN closed_by TEXT;
CREATE INDEX nonconformities_closed ON nonconformities (closed_at);

CREATE TABLE corrective_actions (
    number      INTEGER PRIMARY KEY,
    nc          INTEGER NOT NULL REFERENCES nonconformities (number),
    round       INTEGER NOT NULL,
    description TEXT NOT NULL,
    owner       TEXT NOT NULL,
    due_date    TEXT NOT NULL,
    status      TEXT NOT NULL,
    progress    TEXT,
    evidence    TEXT NOT NULL,
    version     INTEGER NOT NULL,
    created_at  TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    updated_by  TEXT NOT NULL
);
CREATE INDEX corrective_actions_nc ON corrective_actions (nc, number);
CREATE INDEX corrective_actions_open ON corrective_actions (status, due_date);

CREATE TABLE effectiveness_reviews (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    nc       INTEGER NOT NULL REFERENCES nonconformities (number),
    round    INTEGER NOT NULL,
    result   TEXT NOT NULL,
    evidence TEXT NOT NULL,
    notes    TEXT NOT NULL,
    reviewer TEXT NOT NULL,
    at       TEXT NOT NULL
);
CREATE INDEX effectiveness_reviews_nc ON effectiveness_reviews (nc, id);
