-- Risk register (6.1.2, 8.2, 8.3) and the Statement of Applicability (6.1.3 d).
CREATE TABLE risks (
    number               BIGINT PRIMARY KEY,
    title                TEXT NOT NULL,
    asset                TEXT NOT NULL,
    threat               TEXT NOT NULL,
    vulnerability        TEXT NOT NULL,
    properties           TEXT NOT NULL,
    likelihood           BIGINT NOT NULL,
    impact               BIGINT NOT NULL,
    owner                TEXT NOT NULL,
    treatment            TEXT NOT NULL,
    treatment_plan       TEXT,
    residual_likelihood  BIGINT,
    residual_impact      BIGINT,
    accepted_by          TEXT,
    accepted_at          TEXT,
    version              BIGINT NOT NULL,
    created_at           TEXT NOT NULL,
    created_by           TEXT NOT NULL,
    updated_at           TEXT NOT NULL,
    updated_by           TEXT NOT NULL
);

CREATE TABLE risk_controls (
    control TEXT NOT NULL,
    risk    BIGINT NOT NULL REFERENCES risks (number),
    PRIMARY KEY (control, risk)
);
CREATE INDEX risk_controls_risk ON risk_controls (risk);

CREATE TABLE soa_entries (
    control         TEXT PRIMARY KEY,
    applicable      BIGINT NOT NULL,
    justification   TEXT NOT NULL,
    status          TEXT NOT NULL,
    implementation  TEXT,
    owner           TEXT,
    evidence        TEXT NOT NULL,
    requirement     TEXT,
    risk_assessment TEXT,
    version         BIGINT NOT NULL,
    updated_at      TEXT NOT NULL,
    updated_by      TEXT NOT NULL
);

CREATE TABLE soa_versions (
    number      BIGINT PRIMARY KEY,
    approved_at TEXT NOT NULL,
    approved_by TEXT NOT NULL,
    note        TEXT,
    entries     TEXT NOT NULL
);

INSERT INTO counters (kind, last) VALUES ('SOA', 0);
