//! Who may call what: the role table for every operation, enforced in the registry's
//! dispatcher for every front and used to filter the tool list a caller sees.

use super::actor::Role;

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
}
