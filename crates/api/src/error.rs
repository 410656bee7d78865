//! Error responses of the distribution API: `{"errors":[{"code","message","detail"}]}`.

use axum::response::{IntoResponse, Response};
use berth_core::RegistryError;
use berth_oci::ErrorCode;
use http::{HeaderValue, StatusCode, header};

/// An error on its way to the client.
#[derive(Debug)]
pub struct ApiError {
    /// `None` for errors outside the spec's table (unknown endpoint, internal failure).
    pub code: Option<ErrorCode>,
    pub status: StatusCode,
    pub detail: String,
    /// Said in place of the code's fixed message, where the client prints `message` and the
    /// user must act on it (a denial, a policy's refusal).
    pub message: Option<String>,
    pub headers: Vec<(header::HeaderName, HeaderValue)>,
}

impl ApiError {
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> ApiError {
        ApiError {
            code: Some(code),
            status: StatusCode::from_u16(code.status()).unwrap_or(StatusCode::BAD_REQUEST),
            detail: detail.into(),
            message: None,
            headers: Vec::new(),
        }
    }

    /// An error whose `message` says what happened (docker and podman print only `message`).
    pub fn telling(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError { message: Some(message.into()), ..ApiError::new(code, "") }
    }

    pub fn not_found(detail: impl Into<String>) -> ApiError {
        ApiError {
            code: None,
            status: StatusCode::NOT_FOUND,
            detail: detail.into(),
            message: None,
            headers: Vec::new(),
        }
    }

    pub fn method_not_allowed() -> ApiError {
        ApiError::new(ErrorCode::Unsupported, "method not allowed on this endpoint")
    }

    pub fn with_status(mut self, status: StatusCode) -> ApiError {
        self.status = status;
        self
    }

    pub fn with_header(mut self, name: header::HeaderName, value: &str) -> ApiError {
        if let Ok(v) = HeaderValue::from_str(value) {
            self.headers.push((name, v));
        }
        self
    }
}

impl From<RegistryError> for ApiError {
    fn from(e: RegistryError) -> ApiError {
        match e {
            // Harbor tells why a policy refused a pull in the message, which clients print.
            RegistryError::Client { code: ErrorCode::ProjectPolicyViolation, detail } => {
                ApiError::telling(ErrorCode::ProjectPolicyViolation, detail)
            }
            RegistryError::Client { code, detail } => ApiError::new(code, detail),
            RegistryError::Refused { refusal, message } => {
                let code = RegistryError::Refused { refusal, message: String::new() }.code();
                let mut e = ApiError::telling(code.unwrap_or(ErrorCode::Denied), message);
                if refusal == berth_core::Refusal::Conflict {
                    e = e.with_status(StatusCode::CONFLICT);
                }
                e
            }
            RegistryError::UploadOutOfOrder { offset } => ApiError::new(
                ErrorCode::BlobUploadInvalid,
                format!("the upload has {offset} bytes; a chunk must start there"),
            )
            .with_status(StatusCode::RANGE_NOT_SATISFIABLE)
            .with_header(header::RANGE, &crate::handlers::range_header(offset)),
            RegistryError::Internal(detail) => {
                tracing::error!(error = %detail, "internal error");
                ApiError {
                    code: None,
                    status: StatusCode::INTERNAL_SERVER_ERROR,
                    detail: String::new(),
                    message: None,
                    headers: Vec::new(),
                }
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (code, message) = match (self.code, self.status) {
            (Some(c), _) => (c.code(), c.message()),
            (None, StatusCode::NOT_FOUND) => ("NOT_FOUND", "not found"),
            (None, _) => ("INTERNAL_ERROR", "internal server error"),
        };
        let message = self.message.as_deref().unwrap_or(message);
        let mut err = serde_json::json!({ "code": code, "message": message });
        if !self.detail.is_empty() {
            err["detail"] = self.detail.into();
        }
        let body = serde_json::json!({ "errors": [err] }).to_string();
        let mut resp = (self.status, [(header::CONTENT_TYPE, "application/json; charset=utf-8")], body).into_response();
        for (name, value) in self.headers {
            resp.headers_mut().insert(name, value);
        }
        resp
    }
}
