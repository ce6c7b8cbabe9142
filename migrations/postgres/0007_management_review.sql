-- Context and interested parties (4.1, 4.2, 4.3) and management reviews (9.3).
CREATE TABLE context_items (
    kind       TEXT NOT NULL,
    name       TEXT NOT NULL,
    body       TEXT NOT NULL,
    active     BIGINT NOT NULL,
    changed_at TEXT NOT NULL,
    changed_by TEXT NOT NULL,
    PRIMARY KEY (kind, name)
);

CREATE TABLE management_reviews (
    number      BIGINT PRIMARY KEY,
    review_date TEXT NOT NULL,
    body        TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    created_by  TEXT NOT NULL
);

CREATE TABLE review_actions (
    mr          BIGINT NOT NULL REFERENCES management_reviews (number),
    n           BIGINT NOT NULL,
    description TEXT NOT NULL,
    owner       TEXT NOT NULL,
    due_date    TEXT NOT NULL,
    status      TEXT NOT NULL,
    done_at     TEXT,
    note        TEXT,
    PRIMARY KEY (mr, n)
);
