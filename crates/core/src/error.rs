use berth_db::DbError;
use berth_oci::ErrorCode;
use berth_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// A client error, answered with an OCI code and a detail for the human reading it.
    #[error("{code:?}: {detail}")]
    Client { code: ErrorCode, detail: String },
    /// A chunk that does not start where the upload stands: 416 with the current range.
    #[error("chunk does not continue the upload, which has {offset} bytes")]
    UploadOutOfOrder { offset: u64 },
    /// Refused by a rule of the domain (a content policy, a reference that holds), not by a
    /// check of the request's form: the API chooses the status from `refusal`.
    #[error("{message}")]
    Refused { refusal: crate::Refusal, message: String },
    /// A fault of ours or of a dependency; logged, answered with 500 and no detail.
    #[error("internal: {0}")]
    Internal(String),
}

impl RegistryError {
    pub fn client(code: ErrorCode, detail: impl Into<String>) -> RegistryError {
        RegistryError::Client { code, detail: detail.into() }
    }

    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            RegistryError::Client { code, .. } => Some(*code),
            RegistryError::UploadOutOfOrder { .. } => Some(ErrorCode::RangeInvalid),
            RegistryError::Refused { refusal, .. } => Some(match refusal {
                crate::Refusal::Precondition => ErrorCode::Precondition,
                crate::Refusal::Busy => ErrorCode::TooManyRequests,
                crate::Refusal::Unauthorized => ErrorCode::Unauthorized,
                crate::Refusal::NotFound => ErrorCode::ManifestUnknown,
                crate::Refusal::Invalid => ErrorCode::ManifestInvalid,
                crate::Refusal::Conflict | crate::Refusal::Forbidden | crate::Refusal::Internal => ErrorCode::Denied,
            }),
            RegistryError::Internal(_) => None,
        }
    }
}

impl From<DbError> for RegistryError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::Busy(message) => RegistryError::Refused { refusal: crate::Refusal::Busy, message },
            DbError::QuotaExceeded(message) => RegistryError::Refused { refusal: crate::Refusal::Forbidden, message },
            other => RegistryError::Internal(other.to_string()),
        }
    }
}

impl From<StoreError> for RegistryError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Body(detail) => RegistryError::client(ErrorCode::BlobUploadInvalid, detail),
            other => RegistryError::Internal(other.to_string()),
        }
    }
}
