-- Competence (7.2) and awareness (7.3).
CREATE TABLE competence_requirements (
    role        TEXT NOT NULL,
    competency  TEXT NOT NULL,
    description TEXT,
    PRIMARY KEY (role, competency)
);

CREATE TABLE competence_records (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    actor         TEXT NOT NULL REFERENCES actors (name),
    competency    TEXT NOT NULL,
    evidence_type TEXT NOT NULL,
    evidence_ref  TEXT NOT NULL,
    assessed_by   TEXT NOT NULL,
    valid_until   TEXT,
    notes         TEXT,
    gap_action    TEXT,
    recorded_at   TEXT NOT NULL,
    recorded_by   TEXT NOT NULL
);
CREATE INDEX competence_records_actor ON competence_records (actor, competency);

CREATE TABLE policies (
    policy_id      TEXT NOT NULL,
    version        TEXT NOT NULL,
    title          TEXT NOT NULL,
    content        TEXT,
    location       TEXT,
    sha256         TEXT NOT NULL,
    effective_date TEXT NOT NULL,
    roles          TEXT NOT NULL,
    is_current     INTEGER NOT NULL,
    published_at   TEXT NOT NULL,
    published_by   TEXT NOT NULL,
    PRIMARY KEY (policy_id, version)
);
CREATE INDEX policies_current ON policies (is_current, policy_id);

CREATE TABLE acknowledgements (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    actor     TEXT NOT NULL REFERENCES actors (name),
    policy_id TEXT NOT NULL,
    version   TEXT NOT NULL,
    sha256    TEXT NOT NULL,
    context   TEXT,
    at        TEXT NOT NULL,
    UNIQUE (actor, policy_id, version)
);
CREATE INDEX acknowledgements_actor ON acknowledgements (actor, policy_id);
