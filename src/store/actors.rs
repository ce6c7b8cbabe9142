//! Actors and their bearer tokens. Tokens are random, shown once, and stored as SHA-256.

use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::Row;

use super::{Change, Store};
use crate::domain::actor::{Actor, ActorKind, ActorName, Role};
use crate::domain::time::stamp;
use crate::error::{Error, Result};

/// A token just issued: the only moment its plain text exists.
#[derive(Debug, Clone)]
pub struct TokenIssued {
    /// The actor it identifies.
    pub actor: String,
    /// The bearer token.
    pub token: String,
}

fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("isms_{}", hex::encode(bytes))
}

fn actor_from_row(r: &sqlx::any::AnyRow) -> Result<Actor> {
    let kind: String = r.try_get(1)?;
    let role: String = r.try_get(2)?;
    Ok(Actor { name: r.try_get(0)?, kind: kind.parse()?, role: role.parse()? })
}

impl Store {
    /// Registers an actor and issues its first token; `by` is who registers it.
    pub async fn add_actor(&self, by: &str, name: &ActorName, kind: ActorKind, role: Role) -> Result<TokenIssued> {
        let mut w = self.begin_write().await?;
        let now = stamp(w.now());
        let inserted = sqlx::query(
            "INSERT INTO actors (name, kind, role, status, created_at) VALUES ($1, $2, $3, 'active', $4) ON CONFLICT DO NOTHING",
        )
        .bind(name.as_str())
        .bind(kind.as_str())
        .bind(role.as_str())
        .bind(&now)
        .execute(&mut **w.tx())
        .await?
        .rows_affected();
        if inserted == 0 {
            return Err(Error::rule(
                format!("an actor named `{name}` already exists"),
                "choose another name, or issue a new token for the existing actor with `isms actor token NAME`",
            ));
        }
        let token = new_token();
        sqlx::query("INSERT INTO tokens (token_hash, actor, created_at) VALUES ($1, $2, $3)")
            .bind(token_hash(&token))
            .bind(name.as_str())
            .bind(&now)
            .execute(&mut **w.tx())
            .await?;
        let detail = serde_json::json!({ "name": name.as_str(), "kind": kind.as_str(), "role": role.as_str() });
        let record = format!("actor:{name}");
        w.record(Change { actor: by, operation: "add_actor", record: &record, event: "actor.added", detail: &detail })
            .await?;
        w.commit().await?;
        Ok(TokenIssued { actor: name.to_string(), token })
    }

    /// Issues another token for an existing, active actor.
    pub async fn issue_token(&self, by: &str, name: &ActorName) -> Result<TokenIssued> {
        if self.actor_by_name(name.as_str()).await?.is_none() {
            return Err(Error::not_found(format!("actor `{name}`"), "list actors with `isms actor list`"));
        }
        let mut w = self.begin_write().await?;
        let token = new_token();
        sqlx::query("INSERT INTO tokens (token_hash, actor, created_at) VALUES ($1, $2, $3)")
            .bind(token_hash(&token))
            .bind(name.as_str())
            .bind(stamp(w.now()))
            .execute(&mut **w.tx())
            .await?;
        let detail = serde_json::json!({ "name": name.as_str() });
        let record = format!("actor:{name}");
        w.record(Change {
            actor: by,
            operation: "issue_token",
            record: &record,
            event: "actor.token_issued",
            detail: &detail,
        })
        .await?;
        w.commit().await?;
        Ok(TokenIssued { actor: name.to_string(), token })
    }

    /// The active actor a bearer token identifies, if the token is valid.
    pub async fn actor_by_token(&self, token: &str) -> Result<Option<Actor>> {
        let row = sqlx::query(
            "SELECT a.name, a.kind, a.role FROM tokens t JOIN actors a ON a.name = t.actor \
             WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND a.status = 'active'",
        )
        .bind(token_hash(token))
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(actor_from_row).transpose()
    }

    /// The active actor with this name, if any.
    pub async fn actor_by_name(&self, name: &str) -> Result<Option<Actor>> {
        let row = sqlx::query("SELECT name, kind, role FROM actors WHERE name = $1 AND status = 'active'")
            .bind(name)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(actor_from_row).transpose()
    }

    /// Every active actor, by name.
    pub async fn actors(&self) -> Result<Vec<Actor>> {
        let rows = sqlx::query("SELECT name, kind, role FROM actors WHERE status = 'active' ORDER BY name")
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(actor_from_row).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_hashed() {
        let (a, b) = (new_token(), new_token());
        assert_ne!(a, b);
        assert!(a.starts_with("isms_") && a.len() == 69);
        assert_eq!(token_hash(&a).len(), 64);
        assert_ne!(token_hash(&a), a);
    }
}
