-- Change requests (6.3, A.8.32). Descriptive fields live in `body` (JSON); what lists filter
-- on has its own column.
CREATE TABLE change_requests (
    number      INTEGER PRIMARY KEY,
    kind        TEXT NOT NULL,
    status      TEXT NOT NULL,
    requester   TEXT NOT NULL,
    nc          INTEGER,
    ca          INTEGER,
    body        TEXT NOT NULL,
    decision    TEXT,
    decided_at  TEXT,
    started_at  TEXT,
    finished_at TEXT,
    version     INTEGER NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    updated_by  TEXT NOT NULL
);
CREATE INDEX change_requests_status ON change_requests (status, number);
CREATE INDEX change_requests_ca ON change_requests (ca);
CREATE INDEX change_requests_nc ON change_requests (nc);

CREATE TABLE cr_controls (
    control TEXT NOT NULL,
    cr      INTEGER NOT NULL REFERENCES change_requests (number),
    PRIMARY KEY (control, cr)
);
