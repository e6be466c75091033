//! Bearer tokens with scopes. Tokens are configured as BLAKE3 hashes (the token itself is shown
//! once, when it is made); a presented token is hashed and compared with every configured hash in
//! constant time. Tokens never appear in logs or errors.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::{StatusCode, header, request::Parts};

use super::AppState;
use super::problem::Problem;

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// Report user actions (`POST /v1/events`).
    Ingest,
    /// HR and identity-provider commands: hires, grants, resignations, departures, handovers.
    Hr,
    /// Forensic queries and exports.
    AuditRead,
    /// Operations: metrics, token administration.
    Admin,
}

impl Scope {
    pub const ALL: [Scope; 4] = [Scope::Ingest, Scope::Hr, Scope::AuditRead, Scope::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Ingest => "ingest",
            Scope::Hr => "hr",
            Scope::AuditRead => "audit:read",
            Scope::Admin => "admin",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scope {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Scope::ALL
            .into_iter()
            .find(|x| x.as_str() == s)
            .ok_or_else(|| format!("unknown scope {s:?} (known: ingest, hr, audit:read, admin)"))
    }
}

/// One configured token.
#[derive(Clone)]
pub struct TokenRecord {
    pub name: String,
    pub hash: [u8; 32],
    pub scopes: Vec<Scope>,
    /// From this instant on the token is refused (401); `None`: it does not expire.
    pub expires_at: Option<proto_types::Timestamp>,
}

impl fmt::Debug for TokenRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenRecord")
            .field("name", &self.name)
            .field("scopes", &self.scopes)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

const TOKEN_CONTEXT: &str = "handover 2026-12-04 api token v1";

/// The hash a token is configured as.
pub fn token_hash(token: &str) -> [u8; 32] {
    blake3::derive_key(TOKEN_CONTEXT, token.as_bytes())
}

/// A new random token: `hov_` and 64 hex digits (256 bits from the OS).
///
/// # Panics
/// If the operating system has no randomness to give.
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the OS random number generator");
    format!("hov_{}", hex::encode(bytes))
}

/// The configured tokens. They can be replaced while serving (`handover serve` reloads them on
/// SIGHUP): a revoked token is refused from the next request on.
#[derive(Debug, Default)]
pub struct TokenSet {
    tokens: std::sync::RwLock<Vec<TokenRecord>>,
}

impl TokenSet {
    pub fn new(tokens: Vec<TokenRecord>) -> Self {
        Self {
            tokens: std::sync::RwLock::new(tokens),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.read().is_empty()
    }

    /// Puts `tokens` in place of the current ones, for every request from now on.
    pub fn replace(&self, tokens: Vec<TokenRecord>) {
        *self
            .tokens
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = tokens;
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Vec<TokenRecord>> {
        self.tokens
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The token `presented` hashes to, compared against every record in constant time.
    pub fn authenticate(&self, presented: &str) -> Option<TokenRecord> {
        let h = blake3::Hash::from(token_hash(presented));
        let mut found = None;
        for t in self.read().iter() {
            // blake3::Hash compares in constant time; the loop never stops early.
            if blake3::Hash::from(t.hash) == h {
                found = Some(t.clone());
            }
        }
        found
    }
}

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub name: String,
    pub scopes: Arc<[Scope]>,
}

impl Caller {
    /// # Errors
    /// 403 when the caller's token lacks `scope`.
    pub fn require(&self, scope: Scope) -> Result<(), Problem> {
        self.require_any(&[scope])
    }

    /// # Errors
    /// 403 when the caller's token has none of `scopes`.
    pub fn require_any(&self, scopes: &[Scope]) -> Result<(), Problem> {
        if scopes.iter().any(|s| self.scopes.contains(s)) {
            Ok(())
        } else {
            let names: Vec<String> = scopes.iter().map(ToString::to_string).collect();
            Err(Problem::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!(
                    "this endpoint needs a token with the {} scope",
                    names.join(" or ")
                ),
            ))
        }
    }
}

impl FromRef<AppState> for Arc<TokenSet> {
    fn from_ref(app: &AppState) -> Self {
        app.tokens.clone()
    }
}

/// Any router whose state yields the token set authenticates callers the same way (the query
/// service's too).
impl<S> FromRequestParts<S> for Caller
where
    S: Send + Sync,
    Arc<TokenSet>: FromRef<S>,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        let tokens = Arc::<TokenSet>::from_ref(state);
        let unauthorized = |why: &str| Problem::new(StatusCode::UNAUTHORIZED, "unauthorized", why);
        let value = parts.headers.get(header::AUTHORIZATION).ok_or_else(|| {
            unauthorized("no Authorization header; send `Authorization: Bearer <token>`")
        })?;
        let token = value
            .to_str()
            .ok()
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .ok_or_else(|| unauthorized("the Authorization header is not a bearer token"))?;
        let record = tokens
            .authenticate(token)
            .ok_or_else(|| unauthorized("the bearer token is not valid"))?;
        if let Some(at) = record.expires_at
            && proto_types::Timestamp::now() >= at
        {
            return Err(unauthorized(&format!(
                "the bearer token {:?} expired at {}; ask for a new one",
                record.name,
                at.to_rfc3339()
            )));
        }
        Ok(Caller {
            name: record.name,
            scopes: record.scopes.into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_authenticates_by_its_hash_only() {
        let t = new_token();
        assert!(t.starts_with("hov_") && t.len() == 68);
        let set = TokenSet::new(vec![TokenRecord {
            name: "crm".into(),
            hash: token_hash(&t),
            scopes: vec![Scope::Ingest],
            expires_at: None,
        }]);
        assert_eq!(set.authenticate(&t).unwrap().name, "crm");
        assert!(set.authenticate(&new_token()).is_none());
        assert!(!format!("{:?}", set).contains(&hex::encode(token_hash(&t))));
    }
}
