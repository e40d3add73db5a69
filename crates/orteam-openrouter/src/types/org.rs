//! `GET /organization/members` (management key).

use super::wire_object;

wire_object! {
    /// A member of the organization.
    pub struct OrgMember {
        /// `user_…`.
        pub id: String,
        #[serde(default)]
        pub email: Option<String>,
        #[serde(default)]
        pub first_name: Option<String>,
        #[serde(default)]
        pub last_name: Option<String>,
        /// `org:admin` or `org:member`.
        #[serde(default)]
        pub role: Option<String>,
    }
}

impl OrgMember {
    pub fn is_admin(&self) -> bool {
        self.role.as_deref() == Some("org:admin")
    }

    /// `first last`, whichever parts exist.
    pub fn display_name(&self) -> Option<String> {
        let parts: Vec<&str> = [self.first_name.as_deref(), self.last_name.as_deref()]
            .into_iter()
            .flatten()
            .filter(|s| !s.is_empty())
            .collect();
        (!parts.is_empty()).then(|| parts.join(" "))
    }
}
