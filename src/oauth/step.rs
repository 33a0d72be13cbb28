//! What the second step of a browser login asks for, and the page that
//! asks it: a code, or enrolling a first TOTP factor.

use chrono::{DateTime, Utc};

use super::OAuthContext;
use super::authorization_request::AuthorizationRequest;
use crate::auth::second_factor::{self, Due, TotpEnrolment};
use crate::db::DbConnection;
use crate::error::Error;
use crate::models::principal::Principal;

/// The name a factor enrolled at login gets.
pub const ENROLLED_AT_LOGIN: &str = "Authenticator app";

/// What the second-step page asks for.
#[derive(Debug)]
pub enum StepKind {
    /// A code: TOTP, or a recovery code.
    Code,
    /// Enrol a TOTP factor (shown with its secret), confirmed by its first code.
    Enrol(TotpEnrolment),
}

/// Why the second-step page is shown again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepProblem {
    Csrf,
    WrongCode,
    Throttled { retry_after: i64 },
}

/// The second-step page to show.
#[derive(Debug)]
pub struct StepPage {
    pub request: AuthorizationRequest,
    /// Whose login it is.
    pub person: String,
    pub kind: StepKind,
    pub problem: Option<StepProblem>,
}

impl StepPage {
    pub fn new(request: AuthorizationRequest, person: &Principal, kind: StepKind) -> Self {
        Self {
            request,
            person: person.name.clone(),
            kind,
            problem: None,
        }
    }
}

/// What the page asks of `person`, for whom `due` is due.
pub(super) fn kind_for(
    conn: &mut DbConnection,
    oauth: &OAuthContext,
    person: &Principal,
    due: Due,
    now: DateTime<Utc>,
) -> Result<StepKind, Error> {
    Ok(match due {
        Due::Enrol => StepKind::Enrol(second_factor::begin_totp(
            conn,
            &oauth.pepper,
            person,
            ENROLLED_AT_LOGIN,
            &second_factor::issuer_label(oauth.issuer()),
            now,
        )?),
        Due::SecondFactor | Due::Nothing => StepKind::Code,
    })
}
