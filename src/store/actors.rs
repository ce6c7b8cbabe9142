//! Actors and their bearer tokens. Tokens are random, shown once, and stored as SHA-256.

use rand::RngCore;
use sha2::{Digest, Sha256};

use super::sql::{Cells, args};
use super::{Change, Store};
use crate::domain::actor::{Actor, ActorKind, ActorName, Role};
use crate::domain::time::stamp;
use crate::error::{Error, Result};

/// An actor to register.
#[derive(Debug, Clone)]
pub struct NewActor {
    /// Unique name.
    pub name: ActorName,
    /// Human or agent.
    pub kind: ActorKind,
    /// The one role.
    pub role: Role,
    /// An agent's model, e.g. `claude-opus-4`.
    pub model: Option<String>,
    /// The model's version.
    pub model_version: Option<String>,
}

/// An actor as listed: everything but its tokens.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ActorInfo {
    /// Name.
    pub name: String,
    /// Human or agent.
    pub kind: ActorKind,
    /// Role.
    pub role: Role,
    /// Model, for agents.
    pub model: Option<String>,
    /// Model version, for agents.
    pub model_version: Option<String>,
    /// `active` or `retired`.
    pub status: String,
}

/// A token as listed: an id (the first 12 hex digits of its hash), never the token.
#[derive(Debug, Clone)]
pub struct TokenInfo {
    /// Short id, for revoking.
    pub id: String,
    /// When issued (UTC).
    pub created_at: String,
    /// When revoked (UTC), if revoked.
    pub revoked_at: Option<String>,
}

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

fn actor_from_row(r: &impl Cells) -> Result<Actor> {
    let kind: String = r.get(1)?;
    let role: String = r.get(2)?;
    Ok(Actor { name: r.get(0)?, kind: kind.parse()?, role: role.parse()? })
}

impl Store {
    /// Registers an actor and issues its first token; `by` is who registers it.
    pub async fn add_actor(&self, by: &str, new: &NewActor) -> Result<TokenIssued> {
        let NewActor { name, kind, role, .. } = new;
        let mut w = self.begin_write().await?;
        let now = stamp(w.now());
        let inserted = w
            .conn()
            .execute(
                "INSERT INTO actors (name, kind, role, model, model_version, status, created_at) \
             VALUES ($1, $2, $3, $4, $5, 'active', $6) ON CONFLICT DO NOTHING",
                args![
                    name.as_str(),
                    kind.as_str(),
                    role.as_str(),
                    new.model.as_deref(),
                    new.model_version.as_deref(),
                    now
                ],
            )
            .await?;
        if inserted == 0 {
            return Err(Error::rule(
                format!("an actor named `{name}` already exists"),
                "choose another name, or issue a new token for the existing actor with `isms actor token NAME`",
            ));
        }
        let token = new_token();
        w.conn()
            .execute(
                "INSERT INTO tokens (token_hash, actor, created_at) VALUES ($1, $2, $3)",
                args![token_hash(&token), name.as_str(), now],
            )
            .await?;
        let detail = serde_json::json!({
            "name": name.as_str(), "kind": kind.as_str(), "role": role.as_str(),
            "model": new.model, "model_version": new.model_version,
        });
        let record = format!("actor:{name}");
        w.record(Change { actor: by, operation: "add_actor", record: &record, event: "actor.added", detail: &detail })?;
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
        let now = stamp(w.now());
        w.conn()
            .execute(
                "INSERT INTO tokens (token_hash, actor, created_at) VALUES ($1, $2, $3)",
                args![token_hash(&token), name.as_str(), now],
            )
            .await?;
        let detail = serde_json::json!({ "name": name.as_str() });
        let record = format!("actor:{name}");
        w.record(Change {
            actor: by,
            operation: "issue_token",
            record: &record,
            event: "actor.token_issued",
            detail: &detail,
        })?;
        w.commit().await?;
        Ok(TokenIssued { actor: name.to_string(), token })
    }

    /// The active actor a bearer token identifies, if the token is valid.
    pub async fn actor_by_token(&self, token: &str) -> Result<Option<Actor>> {
        let row = self
            .read()
            .await?
            .conn()
            .fetch_optional(
                "SELECT a.name, a.kind, a.role FROM tokens t JOIN actors a ON a.name = t.actor \
             WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND a.status = 'active'",
                args![token_hash(token)],
            )
            .await?;
        row.as_ref().map(actor_from_row).transpose()
    }

    /// The active actor with this name, if any.
    pub async fn actor_by_name(&self, name: &str) -> Result<Option<Actor>> {
        let row = self
            .read()
            .await?
            .conn()
            .fetch_optional("SELECT name, kind, role FROM actors WHERE name = $1 AND status = 'active'", args![name])
            .await?;
        row.as_ref().map(actor_from_row).transpose()
    }

    /// Retires an actor: its tokens stop working and it no longer counts as active.
    pub async fn retire_actor(&self, by: &str, name: &ActorName) -> Result<()> {
        let mut w = self.begin_write().await?;
        let changed = w
            .conn()
            .execute("UPDATE actors SET status = 'retired' WHERE name = $1 AND status = 'active'", args![name.as_str()])
            .await?;
        if changed == 0 {
            return Err(Error::not_found(format!("active actor `{name}`"), "list actors with `isms actor list`"));
        }
        let detail = serde_json::json!({ "name": name.as_str() });
        let record = format!("actor:{name}");
        w.record(Change {
            actor: by,
            operation: "retire_actor",
            record: &record,
            event: "actor.retired",
            detail: &detail,
        })?;
        w.commit().await
    }

    /// The tokens of an actor, newest first.
    pub async fn tokens(&self, name: &str) -> Result<Vec<TokenInfo>> {
        let rows = self
            .read()
            .await?
            .conn()
            .fetch_all(
                "SELECT token_hash, created_at, revoked_at FROM tokens WHERE actor = $1 ORDER BY created_at DESC",
                args![name],
            )
            .await?;
        rows.iter()
            .map(|r| {
                let hash: String = r.get(0)?;
                Ok(TokenInfo { id: hash[..12].to_owned(), created_at: r.get(1)?, revoked_at: r.get(2)? })
            })
            .collect()
    }

    /// Revokes the one unrevoked token whose id (hash prefix) is `id`.
    pub async fn revoke_token(&self, by: &str, id: &str) -> Result<String> {
        let id = id.trim().to_ascii_lowercase();
        if id.len() < 8 || !id.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(Error::invalid(
                "id",
                "give the token id shown by `isms actor tokens NAME` (at least 8 hex digits)",
            ));
        }
        let mut w = self.begin_write().await?;
        let pattern = format!("{id}%");
        let sql = "SELECT token_hash, actor FROM tokens WHERE token_hash LIKE $1 AND revoked_at IS NULL";
        let rows = w.conn().fetch_all(sql, args![pattern]).await?;
        let matches = rows.iter().map(|r| Ok((r.get(0)?, r.get(1)?))).collect::<Result<Vec<(String, String)>>>()?;
        let [(hash, actor)] = matches.as_slice() else {
            return Err(Error::not_found(
                format!("one unrevoked token with id `{id}`"),
                "list them with `isms actor tokens NAME`",
            ));
        };
        let now = stamp(w.now());
        w.conn().execute("UPDATE tokens SET revoked_at = $1 WHERE token_hash = $2", args![now, hash]).await?;
        let detail = serde_json::json!({ "token": &hash[..12] });
        let record = format!("actor:{actor}");
        w.record(Change {
            actor: by,
            operation: "revoke_token",
            record: &record,
            event: "actor.token_revoked",
            detail: &detail,
        })?;
        let actor = actor.clone();
        w.commit().await?;
        Ok(actor)
    }

    /// Every actor, active and retired, by name.
    pub async fn actor_list(&self) -> Result<Vec<ActorInfo>> {
        let rows = self
            .read()
            .await?
            .conn()
            .fetch_all("SELECT name, kind, role, model, model_version, status FROM actors ORDER BY name", args![])
            .await?;
        rows.iter()
            .map(|r| {
                Ok(ActorInfo {
                    name: r.get(0)?,
                    kind: r.get::<String>(1)?.parse()?,
                    role: r.get::<String>(2)?.parse()?,
                    model: r.get(3)?,
                    model_version: r.get(4)?,
                    status: r.get(5)?,
                })
            })
            .collect()
    }

    /// Every active actor, by name.
    pub async fn actors(&self) -> Result<Vec<Actor>> {
        let rows = self
            .read()
            .await?
            .conn()
            .fetch_all("SELECT name, kind, role FROM actors WHERE status = 'active' ORDER BY name", args![])
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
