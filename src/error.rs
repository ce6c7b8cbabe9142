//! The one error type of the domain, mapped once per front (MCP `isError` results, JSON-RPC
//! error objects, CLI exit codes) in `fronts/`.

/// Everything that can go wrong in an operation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An argument is malformed or out of range; nothing was changed.
    #[error("invalid `{field}`: {problem}")]
    Invalid {
        /// The argument's name, as the caller spelt it.
        field: String,
        /// What is wrong and what to send instead.
        problem: String,
    },
    /// The referenced record or item does not exist.
    #[error("{what} not found; {hint}")]
    NotFound {
        /// What was looked up, e.g. `NC-12`.
        what: String,
        /// How to find what exists.
        hint: String,
    },
    /// A rule of the standard or of the ISMS refuses the step.
    #[error("{rule}; {hint}")]
    Rule {
        /// The rule that applies.
        rule: String,
        /// What to do next.
        hint: String,
    },
    /// The record changed since the caller read it.
    #[error("{reference} is at version {current}, not {expected}; re-read it with get_record and retry")]
    Conflict {
        /// The record.
        reference: String,
        /// The version the caller sent.
        expected: i64,
        /// The version stored now.
        current: i64,
    },
    /// The caller's role may not perform this operation.
    #[error("role `{role}` may not call `{operation}`; ask an actor with one of: {allowed}")]
    Forbidden {
        /// The caller's role.
        role: String,
        /// The operation refused.
        operation: String,
        /// The roles that may.
        allowed: String,
    },
    /// No valid credentials were presented.
    #[error("missing or invalid bearer token")]
    Unauthenticated,
    /// The database cannot be reached; the call may be retried.
    #[error("the database is unavailable; retry shortly")]
    Unavailable,
    /// A fault inside the server; logged in full, reported to callers without detail.
    #[error("internal error")]
    Internal(String),
}

impl Error {
    /// Shorthand for [`Error::Invalid`].
    pub fn invalid(field: impl Into<String>, problem: impl Into<String>) -> Self {
        Error::Invalid { field: field.into(), problem: problem.into() }
    }

    /// Shorthand for [`Error::Rule`].
    pub fn rule(rule: impl Into<String>, hint: impl Into<String>) -> Self {
        Error::Rule { rule: rule.into(), hint: hint.into() }
    }

    /// Shorthand for [`Error::NotFound`].
    pub fn not_found(what: impl Into<String>, hint: impl Into<String>) -> Self {
        Error::NotFound { what: what.into(), hint: hint.into() }
    }

    /// Stable machine-readable code of the error kind.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Invalid { .. } => "invalid_argument",
            Error::NotFound { .. } => "not_found",
            Error::Rule { .. } => "rule_violation",
            Error::Conflict { .. } => "version_conflict",
            Error::Forbidden { .. } => "forbidden",
            Error::Unauthenticated => "unauthenticated",
            Error::Unavailable => "unavailable",
            Error::Internal(_) => "internal",
        }
    }
}

/// Whether a database error means the database cannot be reached or ended the session (it
/// shut down, restarted or terminated the connection): a retry may succeed.
fn database_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => true,
        // SQLSTATE class 08 (connection exception), 57P01-57P03 (admin shutdown, crash
        // shutdown, cannot connect now).
        sqlx::Error::Database(db) => {
            db.code().is_some_and(|c| c.starts_with("08") || matches!(c.as_ref(), "57P01" | "57P02" | "57P03"))
        }
        _ => false,
    }
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        if database_unavailable(&e) {
            tracing::warn!(error = %e, "database unavailable");
            return Error::Unavailable;
        }
        tracing::error!(error = %e, "database error");
        Error::Internal(e.to_string())
    }
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        let busy = matches!(
            e.sqlite_error_code(),
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
        );
        if busy {
            tracing::warn!(error = %e, "database unavailable");
            Error::Unavailable
        } else {
            tracing::error!(error = %e, "database error");
            Error::Internal(e.to_string())
        }
    }
}

/// Result with the domain error.
pub type Result<T, E = Error> = std::result::Result<T, E>;
