//! Who may call what: the role table for every operation, enforced in the registry's
//! dispatcher for every front and used to filter the tool list a caller sees.

use super::actor::{Actor, Role};
use crate::error::{Error, Result};

/// Which roles may perform an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Every role, viewers included: reads.
    Everyone,
    /// Every role except `viewer`: recording what one found or did.
    Contributors,
    /// Only these roles.
    Only(&'static [Role]),
}

impl Access {
    /// Whether `role` may perform the operation.
    pub fn permits(self, role: Role) -> bool {
        match self {
            Access::Everyone => true,
            Access::Contributors => role != Role::Viewer,
            Access::Only(roles) => roles.contains(&role),
        }
    }

    /// The roles permitted, for messages.
    pub fn roles(self) -> Vec<Role> {
        Role::ALL.into_iter().filter(|r| self.permits(*r)).collect()
    }
}

/// Only whoever is responsible for a record (its owner or requester), or an ISMS manager,
/// moves it on.
pub fn check_owner_or_manager(actor: &Actor, reference: &str, owner: &str) -> Result<()> {
    if actor.name == owner || actor.role == Role::IsmsManager {
        return Ok(());
    }
    Err(Error::rule(
        format!("{reference} is owned by `{owner}`; only its owner or an ISMS manager may change it"),
        format!("ask `{owner}` to do it, or an ISMS manager"),
    ))
}

/// Roles that oversee the ISMS and may look at other actors' standing (awareness, summaries).
pub fn oversees(role: Role) -> bool {
    matches!(role, Role::IsmsManager | Role::Auditor | Role::TopManagement)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn viewers_only_read() {
        assert!(Access::Everyone.permits(Role::Viewer));
        assert!(!Access::Contributors.permits(Role::Viewer));
        assert!(Access::Contributors.permits(Role::Agent));
        let managers = Access::Only(&[Role::IsmsManager]);
        assert!(managers.permits(Role::IsmsManager) && !managers.permits(Role::Agent));
        assert_eq!(managers.roles(), vec![Role::IsmsManager]);
    }

    #[test]
    fn owners_and_managers_move_records_on() {
        use crate::domain::actor::ActorKind;
        let agent = Actor { name: "a".into(), kind: ActorKind::Agent, role: Role::Agent };
        let manager = Actor { name: "m".into(), kind: ActorKind::Human, role: Role::IsmsManager };
        assert!(check_owner_or_manager(&agent, "CA-1", "a").is_ok());
        assert!(check_owner_or_manager(&manager, "CA-1", "a").is_ok());
        let e = check_owner_or_manager(&agent, "CA-1", "b").unwrap_err().to_string();
        assert!(e.contains("owned by `b`"), "{e}");
        assert!(oversees(Role::Auditor) && !oversees(Role::Agent));
    }
}
