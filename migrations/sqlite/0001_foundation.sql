-- Actors, tokens, counters, the audit trail, the outbox, idempotency keys, nonconformities.
CREATE TABLE actors (
    name          TEXT PRIMARY KEY,
    kind          TEXT NOT NULL,
    role          TEXT NOT NULL,
    model         TEXT,
    model_version TEXT,
    status        TEXT NOT NULL DEFAULT 'active',
    created_at    TEXT NOT NULL
);

CREATE TABLE tokens (
    token_hash TEXT PRIMARY KEY,
    actor      TEXT NOT NULL REFERENCES actors (name),
    created_at TEXT NOT NULL,
    revoked_at TEXT
);

CREATE TABLE counters (
    kind TEXT PRIMARY KEY,
    last INTEGER NOT NULL
);
INSERT INTO counters (kind, last) VALUES ('NC', 0), ('CA', 0), ('CR', 0), ('RISK', 0), ('AUD', 0), ('MR', 0);

CREATE TABLE chain_head (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    seq  INTEGER NOT NULL,
    hash TEXT NOT NULL
);
INSERT INTO chain_head (id, seq, hash) VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

CREATE TABLE audit_log (
    seq        INTEGER PRIMARY KEY,
    at         TEXT NOT NULL,
    actor      TEXT NOT NULL,
    operation  TEXT NOT NULL,
    record_ref TEXT NOT NULL,
    detail     TEXT NOT NULL,
    prev_hash  TEXT NOT NULL,
    hash       TEXT NOT NULL
);
CREATE INDEX audit_log_record ON audit_log (record_ref, seq);

CREATE TABLE outbox (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    at           TEXT NOT NULL,
    event_type   TEXT NOT NULL,
    record_ref   TEXT NOT NULL,
    payload      TEXT NOT NULL,
    published_at TEXT
);
CREATE INDEX outbox_pending ON outbox (id) WHERE published_at IS NULL;

CREATE TABLE idempotency (
    actor        TEXT NOT NULL,
    operation    TEXT NOT NULL,
    key          TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    record_ref   TEXT,
    created_at   TEXT NOT NULL,
    PRIMARY KEY (actor, operation, key)
);

CREATE TABLE nonconformities (
    number      INTEGER PRIMARY KEY,
    title       TEXT NOT NULL,
    description TEXT NOT NULL,
    severity    TEXT NOT NULL,
    source      TEXT NOT NULL,
    status      TEXT NOT NULL,
    clauses     TEXT NOT NULL,
    controls    TEXT NOT NULL,
    detected_in TEXT,
    evidence    TEXT NOT NULL,
    correction  TEXT,
    due_date    TEXT,
    version     INTEGER NOT NULL,
    created_at  TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    updated_by  TEXT NOT NULL
);
CREATE INDEX nonconformities_status ON nonconformities (status, number);
CREATE INDEX nonconformities_due ON nonconformities (due_date);

CREATE TABLE nc_controls (
    control TEXT NOT NULL,
    nc      INTEGER NOT NULL REFERENCES nonconformities (number),
    PRIMARY KEY (control, nc)
);
