//! Who is calling, and whether the route admits them.
//!
//! Every request but those to open routes carries `Authorization: Bearer <secret>`. The
//! secret is looked up by its SHA-256 (`store::tokens`); what was found is kept for a second
//! per instance, which is how long a revocation takes to reach every instance, while a token
//! issued a moment ago works at once (nobody can present a secret before it exists, so a miss
//! is kept too). `LEDGER_ADMIN_TOKEN` is one fixed administrator, `bootstrap`.
//!
//! Which roles a route admits is written once, in its OpenAPI annotation
//! (`security(("bearer" = [roles]))`; `security(())` for an open route): the middleware reads
//! the same document the service publishes, so the two cannot disagree. A route with no
//! security requirement at all admits nobody — closed by default.

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{FromRequestParts, MatchedPath};
use axum::http::request::Parts;
use axum::http::Method;
use base64::Engine;
use chrono::Utc;
use lru::LruCache;
use sqlx::PgPool;
use studyledger_aggregates::values::{MemberId, OrgId};
use utoipa::openapi::OpenApi;

use crate::http::error::ApiError;
use crate::store::record::Metadata;
use crate::store::tokens::{self, Role, Token};

/// How long what a lookup found stays good: the bound on how late a revocation takes effect.
const FRESH_FOR: Duration = Duration::from_secs(1);
/// Token lookups kept per instance.
const CACHED_TOKENS: usize = 100_000;

/// The caller: the token that authenticated the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub token_id: String,
    pub role: Role,
    /// The subtree an `org_admin` reaches.
    pub org: Option<OrgId>,
    /// The member a `member` token is.
    pub member: Option<MemberId>,
    pub name: String,
}

impl Principal {
    /// `LEDGER_ADMIN_TOKEN`'s fixed identity.
    fn bootstrap() -> Principal {
        Principal {
            token_id: "bootstrap".to_owned(),
            role: Role::Admin,
            org: None,
            member: None,
            name: "bootstrap".to_owned(),
        }
    }

    /// Whoever calls a service run with `--insecure-open` without a token.
    fn anonymous() -> Principal {
        Principal {
            token_id: "anonymous".to_owned(),
            role: Role::Admin,
            org: None,
            member: None,
            name: "anonymous".to_owned(),
        }
    }

    fn of(token: &Token) -> Option<Principal> {
        Some(Principal {
            token_id: token.token_id.to_string(),
            role: token.role,
            org: token.org_id.as_deref().map(str::parse).transpose().ok()?,
            member: token.member_id.map(MemberId::new),
            name: token.name.clone(),
        })
    }

    /// The metadata of an event this caller records.
    pub fn metadata(&self, request_id: &str) -> Metadata {
        Metadata {
            actor: self.name.clone(),
            token_id: self.token_id.clone(),
            role: self.role.as_str().to_owned(),
            request_id: request_id.to_owned(),
            recorded_at: Utc::now(),
        }
    }

    /// Whether this is the member's own token.
    pub fn is_member(&self, member_id: MemberId) -> bool {
        self.role == Role::Member && self.member == Some(member_id)
    }
}

/// Which callers a route admits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Policy {
    /// Anyone, without a token.
    Open,
    /// Tokens of these roles.
    Roles(Vec<Role>),
}

/// Every route's policy, read from the OpenAPI document: (method, path template) → policy.
#[derive(Debug, Default)]
pub struct Policies(HashMap<(Method, String), Policy>);

impl Policies {
    pub fn of(document: &OpenApi) -> Policies {
        let mut policies = HashMap::new();
        for (path, item) in &document.paths.paths {
            let operations = [
                (Method::GET, &item.get),
                (Method::POST, &item.post),
                (Method::PUT, &item.put),
                (Method::DELETE, &item.delete),
                (Method::HEAD, &item.head),
            ];
            for (method, operation) in operations {
                let Some(operation) = operation else { continue };
                let Some(requirements) = &operation.security else {
                    continue;
                };
                let value = serde_json::to_value(requirements).unwrap_or_default();
                let policy = policy_of(&value);
                policies.insert((method, path.clone()), policy);
            }
        }
        Policies(policies)
    }

    pub fn get(&self, method: &Method, path: &str) -> Option<&Policy> {
        let method = if method == Method::HEAD {
            &Method::GET
        } else {
            method
        };
        self.0.get(&(method.clone(), path.to_owned()))
    }

    /// Every route with its policy, in path order.
    pub fn routes(&self) -> Vec<(Method, String, Policy)> {
        let mut routes: Vec<_> = self
            .0
            .iter()
            .map(|((m, p), policy)| (m.clone(), p.clone(), policy.clone()))
            .collect();
        routes.sort_by(|a, b| (&a.1, a.0.as_str()).cmp(&(&b.1, b.0.as_str())));
        routes
    }
}

/// `[{}]` is open; `[{"bearer": [roles]}]` admits those roles; anything else admits nobody.
fn policy_of(requirements: &serde_json::Value) -> Policy {
    let list = requirements.as_array().cloned().unwrap_or_default();
    if list
        .iter()
        .any(|r| r.as_object().is_some_and(|o| o.is_empty()))
    {
        return Policy::Open;
    }
    let roles = list
        .iter()
        .filter_map(|r| r.get("bearer")?.as_array().cloned())
        .flatten()
        .filter_map(|role| role.as_str()?.parse().ok())
        .collect();
    Policy::Roles(roles)
}

/// What one lookup found, and when.
#[derive(Clone)]
struct Lookup {
    token: Option<Token>,
    at: Instant,
}

/// Authenticates requests for one instance.
pub struct Authenticator {
    pool: PgPool,
    /// The SHA-256 of `LEDGER_ADMIN_TOKEN`.
    bootstrap: Option<Vec<u8>>,
    insecure_open: bool,
    policies: Policies,
    cache: Mutex<LruCache<Vec<u8>, Lookup>>,
}

impl Authenticator {
    pub fn new(
        pool: PgPool,
        admin_token: Option<&str>,
        insecure_open: bool,
        policies: Policies,
    ) -> Authenticator {
        Authenticator {
            pool,
            bootstrap: admin_token.map(tokens::secret_hash),
            insecure_open,
            policies,
            cache: Mutex::new(LruCache::new(
                NonZeroUsize::new(CACHED_TOKENS).unwrap_or(NonZeroUsize::MIN),
            )),
        }
    }

    pub fn policies(&self) -> &Policies {
        &self.policies
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, LruCache<Vec<u8>, Lookup>> {
        // Every operation under this lock is a single LruCache call: never half done.
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The caller a request's `Authorization` header names; 401 when it names nobody valid.
    pub async fn principal(&self, authorization: Option<&str>) -> Result<Principal, ApiError> {
        let Some(secret) = authorization.and_then(secret_of) else {
            return if self.insecure_open && authorization.is_none() {
                Ok(Principal::anonymous())
            } else {
                Err(ApiError::Unauthorized)
            };
        };
        self.principal_of_hash(tokens::secret_hash(secret.trim()))
            .await
    }

    /// The caller whose token's secret has this SHA-256 (a dashboard session keeps only that);
    /// 401 when it names nobody valid now — revoked and expired tokens end their sessions too.
    pub async fn principal_of_hash(&self, hash: Vec<u8>) -> Result<Principal, ApiError> {
        if self.bootstrap.as_ref() == Some(&hash) {
            return Ok(Principal::bootstrap());
        }
        let cached = self.cache().get(&hash).cloned();
        let lookup = match cached.filter(|l| l.at.elapsed() < FRESH_FOR) {
            Some(lookup) => lookup,
            None => {
                let token = tokens::by_hash(&self.pool, &hash).await?;
                let lookup = Lookup {
                    token,
                    at: Instant::now(),
                };
                self.cache().put(hash, lookup.clone());
                lookup
            }
        };
        lookup
            .token
            .filter(|t| t.is_valid_at(Utc::now()))
            .as_ref()
            .and_then(Principal::of)
            .ok_or(ApiError::Unauthorized)
    }
}

/// The token's secret in an `Authorization` header: `Bearer <secret>`, or HTTP Basic
/// credentials whose password is the secret (any user name; xAPI clients speak Basic).
fn secret_of(authorization: &str) -> Option<String> {
    if let Some(secret) = authorization.strip_prefix("Bearer ") {
        return Some(secret.to_owned());
    }
    let encoded = authorization.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let credentials = String::from_utf8(decoded).ok()?;
    let (_, password) = credentials.split_once(':')?;
    Some(password.to_owned())
}

/// A caller the service itself vouches for: the dashboard's signed-in user, calling the API in
/// process (`http::dashboard::api`). Only code can put it into a request's extensions; the
/// route's policy still decides whether it is admitted.
#[derive(Debug, Clone)]
pub struct Vouched(pub Principal);

/// Everything a handler knows of the request beyond its input: who calls, under which route
/// template and request id.
#[derive(Debug, Clone)]
pub struct Caller {
    pub principal: Principal,
    pub route: String,
    pub request_id: String,
}

impl Caller {
    /// The metadata of an event this request records.
    pub fn metadata(&self) -> Metadata {
        self.principal.metadata(&self.request_id)
    }

    pub fn role(&self) -> Role {
        self.principal.role
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        // Only routes behind `authenticate` take a caller; one without is a wiring bug.
        let principal = parts
            .extensions
            .get::<Principal>()
            .cloned()
            .ok_or(ApiError::Internal)?;
        let route = parts
            .extensions
            .get::<MatchedPath>()
            .map_or_else(String::new, |p| p.as_str().to_owned());
        let request_id = parts
            .headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            // It goes into event metadata and the read log: a client's id is kept only when
            // it is a short token of visible characters.
            .filter(|v| (1..=128).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_graphic()))
            .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned);
        Ok(Caller {
            principal,
            route,
            request_id,
        })
    }
}
