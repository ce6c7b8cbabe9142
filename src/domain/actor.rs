//! Actors: the humans and agents who act in the ISMS, each with one role.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// What an actor may do in the ISMS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// An AI agent doing day-to-day work: logs findings, reads records.
    Agent,
    /// Runs the ISMS: approves, decides, verifies.
    IsmsManager,
    /// Audits the ISMS (9.2).
    Auditor,
    /// Top management (5.1, 9.3).
    TopManagement,
    /// Reads only.
    Viewer,
}

impl Role {
    /// Every role, in order of the documentation.
    pub const ALL: [Role; 5] = [Role::Agent, Role::IsmsManager, Role::Auditor, Role::TopManagement, Role::Viewer];

    /// The role's name as written in arguments and storage.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Agent => "agent",
            Role::IsmsManager => "isms_manager",
            Role::Auditor => "auditor",
            Role::TopManagement => "top_management",
            Role::Viewer => "viewer",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Role::ALL.into_iter().find(|r| r.as_str() == s).ok_or_else(|| {
            Error::invalid(
                "role",
                format!("`{s}` is not a role; use agent, isms_manager, auditor, top_management or viewer"),
            )
        })
    }
}

/// Whether an actor is a person or an AI agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ActorKind {
    /// A person.
    Human,
    /// An AI agent (carries a model and version).
    Agent,
}

impl ActorKind {
    /// The kind's name as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            ActorKind::Human => "human",
            ActorKind::Agent => "agent",
        }
    }
}

impl FromStr for ActorKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "human" => Ok(ActorKind::Human),
            "agent" => Ok(ActorKind::Agent),
            _ => Err(Error::invalid("kind", format!("`{s}` is not an actor kind; use human or agent"))),
        }
    }
}

/// An actor's unique name: 1–64 characters of `a-z 0-9 . _ -`, starting with a letter or digit.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ActorName(String);

impl ActorName {
    /// Parses and checks a name.
    pub fn parse(value: &str) -> Result<Self> {
        let v = value.trim();
        let ok = !v.is_empty()
            && v.len() <= 64
            && v.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'))
            && v.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
        if ok {
            Ok(ActorName(v.to_owned()))
        } else {
            Err(Error::invalid(
                "name",
                format!(
                    "`{value}` is not an actor name; use 1-64 characters of a-z, 0-9, '.', '_' or '-', starting with a letter or digit"
                ),
            ))
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ActorName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A registered actor as the server knows it while serving a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// Unique name.
    pub name: String,
    /// Human or agent.
    pub kind: ActorKind,
    /// The one role.
    pub role: Role,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_parse_from_their_names() {
        for r in Role::ALL {
            assert_eq!(r.as_str().parse::<Role>().unwrap(), r);
        }
        assert!("admin".parse::<Role>().is_err());
    }

    #[test]
    fn names_are_checked() {
        assert!(ActorName::parse("julian").is_ok());
        assert!(ActorName::parse("agent-7.claude_x").is_ok());
        for bad in ["", "Julian", "-x", "a b", &"x".repeat(65), "dröm"] {
            assert!(ActorName::parse(bad).is_err(), "{bad}");
        }
    }
}
