//! How a rejected command is classified, so that the HTTP layer can answer with one table.
//!
//! The domain says what kind of refusal it is; it does not know about status codes.

/// The kind of a domain refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectionKind {
    /// The thing the command is about does not exist.
    NotFound,
    /// The command contradicts recorded facts (an id reused, an overlap, an older version).
    Conflict,
    /// The command breaks a domain rule.
    RuleViolation,
}

pub trait Classify {
    fn kind(&self) -> RejectionKind;
}
