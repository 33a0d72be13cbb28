//! Authentication methods and levels: what a login proved, as RFC 8176
//! method names (`amr`), and the level it reaches (`acr`, OpenID Connect
//! Core §2) that `acr_values` can ask for.

/// An authentication method reference (RFC 8176 §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Method {
    /// Password-based authentication.
    Pwd,
    /// A one-time password (TOTP, or a recovery code).
    Otp,
    /// Proof of possession of a hardware-secured key (a passkey).
    Hwk,
    /// Proof of possession of a software-secured key.
    Swk,
    /// User presence and verification (the passkey's PIN or biometric).
    User,
    /// Multiple-factor authentication.
    Mfa,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pwd => "pwd",
            Self::Otp => "otp",
            Self::Hwk => "hwk",
            Self::Swk => "swk",
            Self::User => "user",
            Self::Mfa => "mfa",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "pwd" => Self::Pwd,
            "otp" => Self::Otp,
            "hwk" => Self::Hwk,
            "swk" => Self::Swk,
            "user" => Self::User,
            "mfa" => Self::Mfa,
            _ => return None,
        })
    }
}

/// The level a login reached (its `acr`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// One factor: a password.
    Single,
    /// Two factors: a password and a second step, or a verified passkey.
    Multi,
}

/// The `acr` of a login with one factor.
pub const ACR_SINGLE: &str = "pwd";
/// The `acr` of a login with two factors; `acr_values=mfa` asks for it.
pub const ACR_MFA: &str = "mfa";
/// The `acr_values_supported` of the discovery document.
pub const ACR_VALUES: [&str; 2] = [ACR_SINGLE, ACR_MFA];

impl Level {
    pub fn acr(self) -> &'static str {
        match self {
            Self::Single => ACR_SINGLE,
            Self::Multi => ACR_MFA,
        }
    }

    /// The level `acr_values` (§3.1.2.1, space-separated, in order of
    /// preference) asks for: multi-factor when it names `mfa` at all.
    /// Unknown values are ignored, as voluntary claims may be.
    pub fn asked(acr_values: Option<&str>) -> Self {
        match acr_values {
            Some(v) if v.split(' ').any(|a| a == ACR_MFA) => Self::Multi,
            _ => Self::Single,
        }
    }
}

/// What a login proved: a sorted set of methods.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Amr(Vec<Method>);

impl Amr {
    pub fn password() -> Self {
        Self(vec![Method::Pwd])
    }

    /// Read a stored, space-separated list; unknown names are dropped.
    pub fn from_stored(stored: &str) -> Self {
        let mut amr = Self::default();
        for m in stored.split(' ').filter_map(Method::from_name) {
            amr.push(m);
        }
        amr
    }

    pub fn to_stored(&self) -> String {
        self.names().join(" ")
    }

    fn push(&mut self, m: Method) {
        if !self.0.contains(&m) {
            self.0.push(m);
            self.0.sort();
        }
    }

    /// These methods and `more`; `mfa` is added once two kinds of factor
    /// were proved (a password and a one-time code, or a key and its user
    /// verification).
    pub fn with(&self, more: &[Method]) -> Self {
        let mut amr = self.clone();
        for m in more {
            amr.push(*m);
        }
        let knows = amr.0.contains(&Method::Pwd) || amr.0.contains(&Method::User);
        let has = amr
            .0
            .iter()
            .any(|m| matches!(m, Method::Otp | Method::Hwk | Method::Swk));
        if knows && has {
            amr.push(Method::Mfa);
        }
        amr
    }

    pub fn level(&self) -> Level {
        if self.0.contains(&Method::Mfa) {
            Level::Multi
        } else {
            Level::Single
        }
    }

    pub fn names(&self) -> Vec<&'static str> {
        self.0.iter().map(|m| m.as_str()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_kinds_of_factor_make_mfa() {
        assert_eq!(Amr::password().names(), ["pwd"]);
        assert_eq!(Amr::password().level(), Level::Single);
        let otp = Amr::password().with(&[Method::Otp]);
        assert_eq!(otp.names(), ["pwd", "otp", "mfa"]);
        assert_eq!(otp.level().acr(), "mfa");
        let key = Amr::default().with(&[Method::Hwk, Method::User]);
        assert_eq!(key.names(), ["hwk", "user", "mfa"]);
        assert_eq!(Amr::default().with(&[Method::Hwk]).level(), Level::Single);
        assert_eq!(Amr::from_stored(&otp.to_stored()), otp);
        assert_eq!(Amr::from_stored("pwd bogus otp").names(), ["pwd", "otp"]);
    }

    #[test]
    fn acr_values_ask_for_mfa_when_they_name_it() {
        assert_eq!(Level::asked(None), Level::Single);
        assert_eq!(Level::asked(Some("pwd")), Level::Single);
        assert_eq!(Level::asked(Some("urn:x mfa")), Level::Multi);
        assert_eq!(Level::asked(Some("mfaX")), Level::Single);
    }
}
