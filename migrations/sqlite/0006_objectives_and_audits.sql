-- Objectives and measurement (6.2, 9.1) and internal audits (9.2).
CREATE TABLE objectives (
    number     INTEGER PRIMARY KEY,
    body       TEXT NOT NULL,
    computed   TEXT,
    owner      TEXT NOT NULL,
    version    INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    created_by TEXT NOT NULL
);

CREATE TABLE measurements (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    objective   INTEGER NOT NULL REFERENCES objectives (number),
    value       TEXT NOT NULL,
    period      TEXT NOT NULL,
    source      TEXT NOT NULL,
    met         INTEGER NOT NULL,
    recorded_at TEXT NOT NULL,
    recorded_by TEXT NOT NULL
);
CREATE INDEX measurements_objective ON measurements (objective, id);

CREATE TABLE audits (
    number       INTEGER PRIMARY KEY,
    status       TEXT NOT NULL,
    auditor      TEXT,
    planned_date TEXT NOT NULL,
    audit_date   TEXT,
    body         TEXT NOT NULL,
    version      INTEGER NOT NULL,
    created_at   TEXT NOT NULL,
    created_by   TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    updated_by   TEXT NOT NULL
);

ALTER TABLE nonconformities ADD COLUMN audit INTEGER;
INSERT INTO counters (kind, last) VALUES ('OBJ', 0);
