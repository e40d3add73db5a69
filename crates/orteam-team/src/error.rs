//! [`TeamError`]: everything plan, apply, rotation and revocation can fail with. Messages name
//! what failed and what to do; none contains a secret (keys are named by hash or label).

use orteam_ledger::LedgerError;
use orteam_openrouter::ClientError;

use crate::file::TeamFileError;

/// Where to create a management key, quoted by the errors about provisioning keys.
pub const MANAGEMENT_KEY_URL: &str = "https://openrouter.ai/settings/provisioning";

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TeamError {
    /// The team file is unreadable or invalid.
    #[error(transparent)]
    File(#[from] TeamFileError),
    /// A ledger operation failed.
    #[error("ledger: {op}: {source}")]
    Ledger {
        op: String,
        #[source]
        source: LedgerError,
    },
    /// An OpenRouter call failed.
    /// Something apply needs at OpenRouter is not there (removed by hand meanwhile); a new
    /// plan sees the current state.
    #[error("{context}: {message} (run `orteam team plan` again)")]
    MissingUpstream { context: String, message: String },
    #[error("OpenRouter: {op}: {source}")]
    Upstream {
        op: String,
        #[source]
        source: ClientError,
    },
    /// `POST /keys` failed in a way that may still have created the key.
    #[error(
        "OpenRouter: creating key {name:?} failed ({source}); it may have been created anyway: \
         run `orteam team apply` again, it finds the key by name and replaces it"
    )]
    CreateUncertain {
        name: String,
        #[source]
        source: ClientError,
    },
    /// No provisioning (management) key was configured.
    #[error(
        "no OpenRouter provisioning key: set OPENROUTER_PROVISIONING_KEY or pass --provisioning-key. \
         It must be a management key (management keys are separate from the sk-or-v1 keys used for \
         completions — create one at {MANAGEMENT_KEY_URL})"
    )]
    MissingProvisioningKey,
    /// An inference key was given where a management key is needed.
    #[error(
        "the provisioning key is an inference (API) key, not a management key: OpenRouter answered \
         403 \"Only management keys can perform this operation\". Inference keys call models; only a \
         management key can list, create and delete keys. Management keys are separate — create one \
         at {MANAGEMENT_KEY_URL}"
    )]
    NotAManagementKey,
    /// OpenRouter rejected the provisioning key (401).
    #[error(
        "OpenRouter rejected the provisioning key (401: unknown, disabled or expired). Check \
         OPENROUTER_PROVISIONING_KEY; create a management key at {MANAGEMENT_KEY_URL}"
    )]
    ProvisioningKeyRejected,
    /// Allowlists name models OpenRouter does not have.
    #[error("unknown model{} in the team file: {}{} (check ids against `GET /models`)", if .models.len() == 1 { "" } else { "s" }, .models.join(", "), .hint)]
    UnknownModels { models: Vec<String>, hint: String },
    /// A member id that the ledger does not know.
    #[error("unknown member {0:?}")]
    UnknownMember(String),
    /// A budget scope id that the ledger does not know, or that is ambiguous.
    #[error("{0}")]
    Target(String),
    /// A member has no key orteam manages.
    #[error("member {0:?} has no key managed by orteam to rotate (run `orteam team apply` first)")]
    NothingToRotate(String),
    /// `upstream = "own"` needs the ledger to hold the key's secret.
    #[error(
        "member {0:?} uses upstream = \"own\": the gateway must hold that key's secret, so set \
         ORTEAM_SECRET_KEY (base64 of 32 random bytes) before applying"
    )]
    SecretKeyMissing(String),
    /// Writing a new secret to its destination failed (the key is then not recorded, and the
    /// next apply replaces it).
    #[error("delivering the new secret for {member:?} failed: {source}")]
    Delivery {
        member: String,
        #[source]
        source: std::io::Error,
    },
    /// Any other invalid input.
    #[error("{0}")]
    Invalid(String),
}

impl TeamError {
    pub(crate) fn ledger(op: impl Into<String>) -> impl FnOnce(LedgerError) -> TeamError {
        let op = op.into();
        move |source| TeamError::Ledger { op, source }
    }

    /// Maps an OpenRouter error, turning the provisioning-key mistakes into their own variants.
    pub(crate) fn upstream(op: impl Into<String>) -> impl FnOnce(ClientError) -> TeamError {
        let op = op.into();
        move |source| {
            if source.is_management_key_required() {
                TeamError::NotAManagementKey
            } else if source.is_unauthorized() {
                TeamError::ProvisioningKeyRejected
            } else {
                TeamError::Upstream { op, source }
            }
        }
    }
}
