//! Who may do what through the operator API: an operator token's role,
//! and the permission each write needs. Reading needs no permission beyond
//! a valid token.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Reads everything, changes nothing.
    Viewer,
    /// Keeps CI records: creates, edits, registers, relates, merges and
    /// imports CIs; takes baselines and audits; raises RFCs.
    #[cfg_attr(
        feature = "clap",
        value(name = "configuration_manager", alias = "configuration-manager")
    )]
    #[serde(alias = "configuration-manager")]
    ConfigurationManager,
    /// Controls change: raises, assesses, approves, rejects, schedules and
    /// reviews RFCs; works incidents.
    #[cfg_attr(
        feature = "clap",
        value(name = "change_manager", alias = "change-manager")
    )]
    #[serde(alias = "change-manager")]
    ChangeManager,
    /// Everything, including tokens and revoking agents.
    Admin,
}

/// What a role may do. Reading needs no permission beyond a valid token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// Edit CIs, relationships and registrations; import; merge and split.
    EditCis,
    /// Take baselines, record audits.
    Audit,
    /// Raise an RFC.
    RaiseRfc,
    /// Assess, approve, reject, schedule, implement, review, close RFCs.
    DecideRfc,
    /// Update incidents.
    WorkIncidents,
    /// Tokens and agents.
    Administer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::ConfigurationManager => "configuration_manager",
            Role::ChangeManager => "change_manager",
            Role::Admin => "admin",
        }
    }

    pub const ALL: [Role; 4] = [
        Role::Viewer,
        Role::ConfigurationManager,
        Role::ChangeManager,
        Role::Admin,
    ];

    pub fn may(self, p: Permission) -> bool {
        use Permission::*;
        match self {
            Role::Admin => true,
            Role::Viewer => false,
            Role::ConfigurationManager => matches!(p, EditCis | Audit | RaiseRfc | WorkIncidents),
            Role::ChangeManager => matches!(p, RaiseRfc | DecideRfc | WorkIncidents),
        }
    }
}

impl Permission {
    /// What it allows, for refusals.
    pub fn describe(self) -> &'static str {
        match self {
            Permission::EditCis => "change CI records",
            Permission::Audit => "take baselines and record audits",
            Permission::RaiseRfc => "raise RFCs",
            Permission::DecideRfc => {
                "assess, approve, reject, schedule, implement, review or close RFCs"
            }
            Permission::WorkIncidents => "update incidents",
            Permission::Administer => "manage tokens and agents",
        }
    }

    /// The roles that have it, e.g. "change_manager or admin".
    pub fn roles(self) -> String {
        let roles: Vec<&str> = Role::ALL
            .into_iter()
            .filter(|r| r.may(self))
            .map(Role::as_str)
            .collect();
        roles.join(" or ")
    }
}
