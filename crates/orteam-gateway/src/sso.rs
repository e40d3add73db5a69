//! Single sign-on (OpenID Connect) for the dashboard and the admin API.
//!
//! The authorization code flow with PKCE against any standard provider (issuer discovery and its
//! JWKS), through the maintained `openidconnect` crate, which checks the ID token (signature,
//! issuer, audience, expiry, nonce); nothing here reads a token before that crate accepted it.
//!
//! - `GET /auth/login`: a fresh state, nonce and PKCE verifier go into a short-lived encrypted
//!   cookie (`orteam_sso_flow`, path `/auth`), and the browser is sent to the provider.
//! - `GET /auth/callback`: the state must match the flow cookie; the code is exchanged with the
//!   client secret and the PKCE verifier; the verified `email` and groups claim become a
//!   [`Principal`] (groups → roles by the team file's `[access.groups]`, else the member whose
//!   `email` the team file names; the file is read at each sign-in); the session goes into an encrypted cookie (`orteam_session`). Sign-ins and refused
//!   sign-ins are appended to the audit log with the identity.
//! - `GET /auth/session`: who is signed in, and the CSRF token for state-changing requests.
//! - `POST /auth/logout`: clears the session (needs the CSRF header).
//!
//! **Sessions are encrypted cookies** (AES-256-GCM, key from `ORTEAM_SESSION_KEY`), not rows:
//! every gateway instance given the same key accepts them with no shared state and no database
//! round trip per dashboard poll. They end at `session_ttl` (default 8 h) or at sign-out; a
//! member removed from the ledger loses access at once (the member is looked up per request).
//! Cookies are `HttpOnly`, `SameSite=Lax`, and `Secure` when the redirect URL is https. A
//! request made with the session cookie that changes anything (any method but GET/HEAD) must
//! also carry `x-orteam-csrf` with the session's token, which only a page of this origin can read
//! (from `/auth/session`).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce as GcmNonce};
use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Utc;
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreGenderClaim, CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm, CoreProviderMetadata,
};
use openidconnect::{
    AdditionalClaims, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IdToken, IssuerUrl,
    Nonce, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope, TokenResponse,
};
use orteam_core::access::{Principal, Role};
use orteam_ledger::{Ledger, NewAuditEntry};
use orteam_team::file::Grant;
use rand::Rng;
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::admin::{AdminState, ConnectInfoOpt};
use crate::error::GatewayError;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "orteam_session";
/// The sign-in flow's cookie (state, nonce, PKCE verifier), for ten minutes.
pub const FLOW_COOKIE: &str = "orteam_sso_flow";
/// The header a cookie session's state-changing requests carry.
pub const CSRF_HEADER: &str = "x-orteam-csrf";
const FLOW_TTL_SECS: i64 = 600;
/// How long discovered provider metadata (endpoints, JWKS) is reused.
const METADATA_TTL: Duration = Duration::from_secs(600);

/// `[sso]` of the serve configuration, validated.
#[derive(Clone)]
pub struct SsoSettings {
    /// The provider's issuer URL (discovery at `{issuer}/.well-known/openid-configuration`).
    pub issuer: String,
    pub client_id: String,
    pub client_secret: SecretString,
    /// This gateway's `/auth/callback` as the provider knows it; `https://` makes cookies Secure.
    pub redirect_url: String,
    /// Scopes asked for besides `openid` (default `email`, `profile`).
    pub scopes: Vec<String>,
    /// The claim that lists the identity's groups (default `groups`).
    pub groups_claim: String,
    /// The team file read at each sign-in: its `[access.groups]` map groups to roles, its
    /// members' `email` map identities to members. Without it nobody can sign in.
    pub team_file: Option<PathBuf>,
    pub session_key: SecretString,
    pub session_ttl: Duration,
}

impl std::fmt::Debug for SsoSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SsoSettings")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("redirect_url", &self.redirect_url)
            .field("team_file", &self.team_file)
            .finish_non_exhaustive()
    }
}

/// `[sso]` as written in `orteam.toml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileSso {
    issuer: Option<String>,
    client_id: Option<String>,
    client_secret_env: Option<String>,
    redirect_url: Option<String>,
    scopes: Option<Vec<String>>,
    groups_claim: Option<String>,
    /// Moved to the team file's `[access.groups]`; read only to say so.
    groups: Option<toml::Value>,
    team_file: Option<PathBuf>,
    session_key_env: Option<String>,
    session_ttl: Option<String>,
}

impl FileSso {
    pub(crate) fn resolve(
        self,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<SsoSettings, String> {
        let need = |v: Option<String>, field: &str| {
            v.filter(|s| !s.trim().is_empty())
                .ok_or_else(|| format!("sso.{field} is required"))
        };
        let issuer = need(self.issuer, "issuer")?;
        let redirect_url = need(self.redirect_url, "redirect_url")?;
        for (field, url) in [("issuer", &issuer), ("redirect_url", &redirect_url)] {
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                return Err(format!("sso.{field} = {url:?} must be an http(s) URL"));
            }
        }
        let secret_var = self
            .client_secret_env
            .unwrap_or_else(|| orteam_core::env::ORTEAM_SSO_CLIENT_SECRET.to_owned());
        let client_secret = lookup(&secret_var)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| format!("sso: the client secret is read from ${secret_var}, unset"))?;
        let key_var = self
            .session_key_env
            .unwrap_or_else(|| orteam_core::env::ORTEAM_SESSION_KEY.to_owned());
        let session_key = lookup(&key_var).filter(|s| !s.is_empty()).ok_or_else(|| {
            format!(
                "sso: sessions are encrypted with ${key_var}, unset (at least 32 bytes, the same on \
                 every instance, e.g. `head -c32 /dev/urandom | base64`)"
            )
        })?;
        if session_key.len() < 32 {
            return Err(format!("${key_var} must be at least 32 bytes long"));
        }
        let session_ttl = match self.session_ttl {
            None => Duration::from_secs(8 * 3600),
            Some(t) => humantime::parse_duration(&t)
                .map_err(|e| format!("sso.session_ttl = {t:?}: {e}"))?,
        };
        if self.groups.is_some() {
            return Err(
                "[sso.groups] moved to the team file: write the same groups under [access.groups] \
                 of sso.team_file (team leads can then get a max_raise; see docs/access.md)"
                    .into(),
            );
        }
        Ok(SsoSettings {
            issuer,
            client_id: need(self.client_id, "client_id")?,
            client_secret: SecretString::from(client_secret),
            redirect_url,
            scopes: self
                .scopes
                .unwrap_or_else(|| vec!["email".into(), "profile".into()]),
            groups_claim: self.groups_claim.unwrap_or_else(|| "groups".into()),
            team_file: self.team_file,
            session_key: SecretString::from(session_key),
            session_ttl,
        })
    }
}

/// Every claim besides the standard ones, so the groups claim can have any name.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct OtherClaims {
    #[serde(flatten)]
    all: HashMap<String, serde_json::Value>,
}
impl AdditionalClaims for OtherClaims {}

type GroupsIdToken = IdToken<
    OtherClaims,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;

/// A signed-in session (inside the encrypted cookie).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Session {
    pub principal: Principal,
    pub email: String,
    pub csrf: String,
    /// Unix seconds.
    pub exp: i64,
}

/// A sign-in under way (inside the encrypted flow cookie).
#[derive(Serialize, Deserialize)]
struct Flow {
    state: String,
    nonce: String,
    verifier: String,
    exp: i64,
}

/// The single sign-on runtime: settings, the cookie cipher, the provider's cached metadata.
pub struct Sso {
    settings: SsoSettings,
    http: reqwest::Client,
    cipher: Aes256Gcm,
    metadata: tokio::sync::Mutex<Option<(CoreProviderMetadata, Instant)>>,
    secure: bool,
}

impl std::fmt::Debug for Sso {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sso")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Sso {
    pub fn new(settings: SsoSettings) -> Result<Arc<Sso>, String> {
        // The OAuth 2 security advice: never follow redirects from the provider's endpoints.
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(15))
            .build()
            .map_err(|e| format!("sso: HTTP client: {e}"))?;
        let key: [u8; 32] = Sha256::digest(settings.session_key.expose_secret().as_bytes()).into();
        let cipher = Aes256Gcm::new_from_slice(&key).map_err(|e| format!("sso: key: {e}"))?;
        Ok(Arc::new(Sso {
            secure: settings.redirect_url.starts_with("https://"),
            settings,
            http,
            cipher,
            metadata: tokio::sync::Mutex::new(None),
        }))
    }

    fn seal(&self, name: &str, value: &impl Serialize) -> Result<String, GatewayError> {
        let json = serde_json::to_vec(value).map_err(|e| GatewayError::Internal(e.to_string()))?;
        let nonce: [u8; 12] = rand::rng().random();
        let sealed = self
            .cipher
            .encrypt(
                GcmNonce::from_slice(&nonce),
                Payload {
                    msg: &json,
                    aad: name.as_bytes(),
                },
            )
            .map_err(|_| GatewayError::Internal("sealing a cookie failed".into()))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(URL_SAFE_NO_PAD.encode(out))
    }

    fn open<T: DeserializeOwned>(&self, name: &str, text: &str) -> Option<T> {
        let raw = URL_SAFE_NO_PAD.decode(text).ok()?;
        if raw.len() < 12 {
            return None;
        }
        let (nonce, sealed) = raw.split_at(12);
        let json = self
            .cipher
            .decrypt(
                GcmNonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: name.as_bytes(),
                },
            )
            .ok()?;
        serde_json::from_slice(&json).ok()
    }

    fn cookie(&self, name: &str, value: &str, path: &str, max_age: i64) -> HeaderValue {
        let secure = if self.secure { "; Secure" } else { "" };
        HeaderValue::from_str(&format!(
            "{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}"
        ))
        .unwrap_or_else(|_| HeaderValue::from_static(""))
    }

    /// The session a request's cookie carries, if valid and not expired.
    pub(crate) fn session(&self, headers: &HeaderMap) -> Option<Session> {
        let text = cookie_value(headers, SESSION_COOKIE)?;
        let s: Session = self.open(SESSION_COOKIE, text)?;
        (s.exp > Utc::now().timestamp()).then_some(s)
    }

    async fn metadata(&self) -> Result<CoreProviderMetadata, String> {
        let mut cached = self.metadata.lock().await;
        if let Some((m, at)) = cached.as_ref()
            && at.elapsed() < METADATA_TTL
        {
            return Ok(m.clone());
        }
        let issuer = IssuerUrl::new(self.settings.issuer.clone()).map_err(|e| e.to_string())?;
        let m = CoreProviderMetadata::discover_async(issuer, &self.http)
            .await
            .map_err(|e| format!("discovery at {}: {e}", self.settings.issuer))?;
        *cached = Some((m.clone(), Instant::now()));
        Ok(m)
    }

    async fn forget_metadata(&self) {
        *self.metadata.lock().await = None;
    }

    fn client(
        &self,
        metadata: CoreProviderMetadata,
    ) -> Result<
        CoreClient<
            openidconnect::EndpointSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointMaybeSet,
            openidconnect::EndpointMaybeSet,
        >,
        String,
    > {
        let redirect =
            RedirectUrl::new(self.settings.redirect_url.clone()).map_err(|e| e.to_string())?;
        Ok(CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(self.settings.client_id.clone()),
            Some(ClientSecret::new(
                self.settings.client_secret.expose_secret().to_owned(),
            )),
        )
        .set_redirect_uri(redirect))
    }

    /// The verified identity of a callback: `(email, groups)`.
    async fn exchange(&self, code: String, flow: &Flow) -> Result<(String, Vec<String>), String> {
        let client = self.client(self.metadata().await?)?;
        let answer = client
            .exchange_code(AuthorizationCode::new(code))
            .map_err(|e| e.to_string())?
            .set_pkce_verifier(PkceCodeVerifier::new(flow.verifier.clone()))
            .request_async(&self.http)
            .await
            .map_err(|e| format!("the provider refused the code: {}", describe(&e)))?;
        let raw = answer
            .id_token()
            .ok_or("the provider sent no ID token")?
            .to_string();
        // The same token, read with every claim kept, and verified by openidconnect: signature
        // against the provider's JWKS, issuer, audience, expiry, nonce.
        let token: GroupsIdToken = raw.parse().map_err(|e| format!("ID token: {e}"))?;
        let verifier = client.id_token_verifier();
        let nonce = Nonce::new(flow.nonce.clone());
        let claims = match token.claims(&verifier, &nonce) {
            Ok(c) => c,
            Err(e) => {
                // Keys may have rotated since discovery: the next sign-in rediscovers.
                self.forget_metadata().await;
                return Err(format!("ID token refused: {e}"));
            }
        };
        if claims.email_verified() == Some(false) {
            return Err("the provider says this email is not verified".into());
        }
        let email = claims
            .email()
            .map(|e| e.as_str().to_owned())
            .ok_or("the ID token has no email claim (ask for the `email` scope)")?;
        let groups = match claims
            .additional_claims()
            .all
            .get(&self.settings.groups_claim)
        {
            Some(serde_json::Value::Array(items)) => items
                .iter()
                .filter_map(|g| g.as_str().map(str::to_owned))
                .collect(),
            Some(serde_json::Value::String(one)) => vec![one.clone()],
            _ => Vec::new(),
        };
        Ok((email, groups))
    }

    /// Who `email` with `groups` is, by the team file (read now, so a changed file applies
    /// at the next sign-in): the strongest role its `[access.groups]` grant, else the member
    /// whose email it names.
    fn principal(
        &self,
        ledger: &Ledger,
        email: &str,
        groups: &[String],
    ) -> Result<Principal, String> {
        let Some(path) = &self.settings.team_file else {
            return Err(format!(
                "{email}: no sso.team_file, so no group grants a role and no email maps to a member"
            ));
        };
        let team = orteam_team::file::load(path).map_err(|e| e.to_string())?;
        let name = format!("sso:{email}");
        let granted: Vec<&Grant> = groups
            .iter()
            .filter_map(|g| team.access.groups.get(g))
            .collect();
        if let Some(p) = strongest(&name, &granted) {
            return Ok(p);
        }
        let member = team
            .members
            .iter()
            .find(|m| {
                m.email
                    .as_deref()
                    .is_some_and(|e| e.eq_ignore_ascii_case(email))
            })
            .map(|m| m.id.clone())
            .ok_or_else(|| {
                format!(
                    "{email}: no member of the team file has this email and none of its groups \
                     has a role in [access.groups]"
                )
            })?;
        let active = ledger
            .directory()
            .members
            .get(&member)
            .is_some_and(|m| m.removed_at.is_none());
        if !active {
            return Err(format!(
                "{email} is member {member:?} in the team file, but not an active member of the ledger"
            ));
        }
        let mut p = Principal::member(&member);
        p.name = name;
        Ok(p)
    }
}

/// The strongest role the groups grant (`admin` > `viewer` > `team_lead`). Several team-lead
/// groups lead all their teams together, with the smallest `max_raise` among them (none if one
/// has none), so no group's cap is ever exceeded.
fn strongest(name: &str, granted: &[&Grant]) -> Option<Principal> {
    let principal = |role: Role, teams: Vec<String>, max_raise| Principal {
        name: name.to_owned(),
        role,
        teams,
        member: None,
        max_raise,
    };
    for role in [Role::Admin, Role::Viewer] {
        if granted.iter().any(|g| g.role == role) {
            return Some(principal(role, Vec::new(), None));
        }
    }
    let leads: Vec<&&Grant> = granted
        .iter()
        .filter(|g| g.role == Role::TeamLead)
        .collect();
    if leads.is_empty() {
        return None;
    }
    let mut teams: Vec<String> = leads.iter().flat_map(|g| g.teams.clone()).collect();
    teams.sort();
    teams.dedup();
    let max_raise = leads
        .iter()
        .map(|g| g.max_raise)
        .collect::<Option<Vec<_>>>()
        .and_then(|caps| caps.into_iter().min());
    Some(principal(Role::TeamLead, teams, max_raise))
}

/// The provider's error without the request details.
fn describe<E: std::error::Error>(e: &E) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub(crate) fn cookie_value<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Whether a cookie-session request that changes something carries the session's CSRF token.
pub(crate) fn csrf_ok(method: &Method, headers: &HeaderMap, session: &Session) -> bool {
    if matches!(*method, Method::GET | Method::HEAD) {
        return true;
    }
    headers
        .get(CSRF_HEADER)
        .is_some_and(|v| bool::from(v.as_bytes().ct_eq(session.csrf.as_bytes())))
}

fn random_token() -> String {
    let bytes: [u8; 32] = rand::rng().random();
    URL_SAFE_NO_PAD.encode(bytes)
}

fn redirect(to: &str) -> Response {
    (
        StatusCode::SEE_OTHER,
        [(
            header::LOCATION,
            HeaderValue::from_str(to).unwrap_or(HeaderValue::from_static("/dashboard")),
        )],
    )
        .into_response()
}

fn sso_of(state: &AdminState) -> Result<&Arc<Sso>, GatewayError> {
    state.sso.as_ref().ok_or_else(|| {
        GatewayError::NotFound("single sign-on is not configured ([sso] in orteam.toml)".into())
    })
}

/// `GET /auth/login`: off to the provider.
pub(crate) async fn login(State(state): State<AdminState>) -> Result<Response, GatewayError> {
    let sso = sso_of(&state)?;
    let metadata = sso.metadata().await.map_err(|e| {
        tracing::warn!(error = %e, "single sign-on: provider unreachable");
        GatewayError::Upstream {
            status: StatusCode::BAD_GATEWAY,
            message: format!("the identity provider is unreachable: {e}"),
        }
    })?;
    let client = sso.client(metadata).map_err(GatewayError::Internal)?;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut request = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .set_pkce_challenge(challenge);
    for scope in &sso.settings.scopes {
        request = request.add_scope(Scope::new(scope.clone()));
    }
    let (url, state_token, nonce) = request.url();
    let flow = Flow {
        state: state_token.secret().clone(),
        nonce: nonce.secret().clone(),
        verifier: verifier.secret().clone(),
        exp: Utc::now().timestamp() + FLOW_TTL_SECS,
    };
    let sealed = sso.seal(FLOW_COOKIE, &flow)?;
    let mut resp = redirect(url.as_str());
    resp.headers_mut().append(
        header::SET_COOKIE,
        sso.cookie(FLOW_COOKIE, &sealed, "/auth", FLOW_TTL_SECS),
    );
    Ok(resp)
}

#[derive(Deserialize)]
pub(crate) struct CallbackParams {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// `GET /auth/callback`: the provider's answer; a session, or back to the sign-in page with
/// the reason.
pub(crate) async fn callback(
    State(state): State<AdminState>,
    ConnectInfoOpt(from): ConnectInfoOpt,
    headers: HeaderMap,
    Query(q): Query<CallbackParams>,
) -> Result<Response, GatewayError> {
    let sso = sso_of(&state)?;
    let outcome = async {
        if let Some(err) = q.error {
            return Err((
                None,
                format!(
                    "the provider said {err}{}",
                    q.error_description
                        .map(|d| format!(": {d}"))
                        .unwrap_or_default()
                ),
            ));
        }
        let flow: Flow = cookie_value(&headers, FLOW_COOKIE)
            .and_then(|c| sso.open(FLOW_COOKIE, c))
            .filter(|f: &Flow| f.exp > Utc::now().timestamp())
            .ok_or((
                None,
                "no sign-in under way in this browser (or it took over 10 minutes)".to_owned(),
            ))?;
        let given = q.state.unwrap_or_default();
        if !bool::from(given.as_bytes().ct_eq(flow.state.as_bytes())) {
            return Err((
                None,
                "the state does not match this browser's sign-in".to_owned(),
            ));
        }
        let code = q
            .code
            .ok_or((None, "the provider sent no code".to_owned()))?;
        let (email, groups) = sso.exchange(code, &flow).await.map_err(|e| (None, e))?;
        let principal = sso
            .principal(&state.ledger, &email, &groups)
            .map_err(|e| (Some(email.clone()), e))?;
        Ok((email, groups, principal))
    }
    .await;
    let mut resp = match outcome {
        Ok((email, groups, principal)) => {
            let _ = state
                .ledger
                .audit(NewAuditEntry {
                    actor: principal.name.clone(),
                    action: "sign_in".into(),
                    target: "dashboard".into(),
                    before: None,
                    after: Some(
                        serde_json::json!({
                            "role": principal.role,
                            "teams": principal.teams,
                            "member": principal.member,
                            "groups": groups,
                        })
                        .to_string(),
                    ),
                    source: from,
                })
                .await;
            tracing::info!(identity = %email, role = %principal.role, "single sign-on");
            let ttl = sso.settings.session_ttl.as_secs() as i64;
            let session = Session {
                principal,
                email,
                csrf: random_token(),
                exp: Utc::now().timestamp() + ttl,
            };
            let sealed = sso.seal(SESSION_COOKIE, &session)?;
            let mut resp = redirect("/dashboard");
            resp.headers_mut().append(
                header::SET_COOKIE,
                sso.cookie(SESSION_COOKIE, &sealed, "/", ttl),
            );
            resp
        }
        Err((identity, reason)) => {
            let actor = identity
                .as_ref()
                .map_or_else(|| "(unauthenticated)".to_owned(), |e| format!("sso:{e}"));
            let _ = state
                .ledger
                .audit(NewAuditEntry {
                    actor,
                    action: "sign_in_failed".into(),
                    target: "sso".into(),
                    before: None,
                    after: Some(serde_json::json!({ "reason": reason }).to_string()),
                    source: from,
                })
                .await;
            tracing::warn!(reason = %reason, "single sign-on refused");
            let query = url_encode(&format!("sign-in refused: {reason}"));
            redirect(&format!("/dashboard?sso_error={query}"))
        }
    };
    resp.headers_mut()
        .append(header::SET_COOKIE, sso.cookie(FLOW_COOKIE, "", "/auth", 0));
    Ok(resp)
}

fn url_encode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// `GET /auth/session`: whether SSO is on, and who is signed in (with the CSRF token).
pub(crate) async fn session(State(state): State<AdminState>, headers: HeaderMap) -> Response {
    let Some(sso) = state.sso.as_ref() else {
        return Json(serde_json::json!({ "sso": false, "signed_in": false })).into_response();
    };
    let body = match sso.session(&headers) {
        Some(s) => serde_json::json!({
            "sso": true,
            "signed_in": true,
            "email": s.email,
            "name": s.principal.name,
            "role": s.principal.role,
            "teams": s.principal.teams,
            "member": s.principal.member,
            "csrf": s.csrf,
        }),
        None => serde_json::json!({ "sso": true, "signed_in": false }),
    };
    ([(header::CACHE_CONTROL, "no-store")], Json(body)).into_response()
}

/// `POST /auth/logout`: ends the session (with the CSRF header).
pub(crate) async fn logout(
    State(state): State<AdminState>,
    ConnectInfoOpt(from): ConnectInfoOpt,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, GatewayError> {
    let sso = sso_of(&state)?;
    if let Some(s) = sso.session(&headers) {
        if !csrf_ok(&method, &headers, &s) {
            return Err(GatewayError::Forbidden(format!(
                "signing out needs the `{CSRF_HEADER}` header from GET /auth/session"
            )));
        }
        let _ = state
            .ledger
            .audit(NewAuditEntry {
                actor: s.principal.name.clone(),
                action: "sign_out".into(),
                target: "dashboard".into(),
                before: None,
                after: None,
                source: from,
            })
            .await;
    }
    let mut resp = StatusCode::NO_CONTENT.into_response();
    resp.headers_mut()
        .append(header::SET_COOKIE, sso.cookie(SESSION_COOKIE, "", "/", 0));
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> SsoSettings {
        SsoSettings {
            issuer: "http://127.0.0.1:1".into(),
            client_id: "orteam".into(),
            client_secret: SecretString::from("client-secret".to_owned()),
            redirect_url: "https://orteam.example.com/auth/callback".into(),
            scopes: vec!["email".into()],
            groups_claim: "groups".into(),
            team_file: None,
            session_key: SecretString::from("k".repeat(32)),
            session_ttl: Duration::from_secs(60),
        }
    }

    #[test]
    fn cookies_are_sealed_to_their_name_and_key() {
        let sso = Sso::new(settings()).unwrap();
        let sealed = sso.seal(SESSION_COOKIE, &"hello").unwrap();
        assert_eq!(
            sso.open::<String>(SESSION_COOKIE, &sealed).as_deref(),
            Some("hello")
        );
        // A flow cookie cannot be replayed as a session, nor a tampered one opened.
        assert!(sso.open::<String>(FLOW_COOKIE, &sealed).is_none());
        let mut bytes = URL_SAFE_NO_PAD.decode(&sealed).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        assert!(
            sso.open::<String>(SESSION_COOKIE, &URL_SAFE_NO_PAD.encode(bytes))
                .is_none()
        );
        let mut other = settings();
        other.session_key = SecretString::from("j".repeat(32));
        assert!(
            Sso::new(other)
                .unwrap()
                .open::<String>(SESSION_COOKIE, &sealed)
                .is_none()
        );
        let c = sso.cookie(SESSION_COOKIE, "v", "/", 60);
        assert_eq!(
            c.to_str().unwrap(),
            "orteam_session=v; Path=/; Max-Age=60; HttpOnly; SameSite=Lax; Secure"
        );
    }

    fn grant(role: Role, teams: &[&str], max: Option<&str>) -> Grant {
        Grant {
            role,
            teams: teams.iter().map(|t| t.to_string()).collect(),
            max_raise: max.map(|m| orteam_core::Money::parse(m).unwrap()),
        }
    }

    #[test]
    fn the_strongest_group_wins_and_team_leads_keep_the_smallest_cap() {
        let admin = grant(Role::Admin, &[], None);
        let viewer = grant(Role::Viewer, &[], None);
        let core = grant(Role::TeamLead, &["core"], Some("50"));
        let web = grant(Role::TeamLead, &["web"], Some("20"));
        let no_raise = grant(Role::TeamLead, &["ops"], None);
        assert!(strongest("sso:x", &[]).is_none());
        let p = strongest("sso:x", &[&core, &admin]).unwrap();
        assert_eq!((p.role, p.max_raise), (Role::Admin, None));
        assert_eq!(
            strongest("sso:x", &[&core, &viewer]).unwrap().role,
            Role::Viewer
        );
        let p = strongest("sso:x", &[&core]).unwrap();
        assert_eq!(p.role, Role::TeamLead);
        assert_eq!(p.teams, vec!["core".to_owned()]);
        assert_eq!(p.max_raise, Some(orteam_core::Money::parse("50").unwrap()));
        let p = strongest("sso:x", &[&core, &web]).unwrap();
        assert_eq!(p.teams, vec!["core".to_owned(), "web".to_owned()]);
        assert_eq!(p.max_raise, Some(orteam_core::Money::parse("20").unwrap()));
        assert_eq!(
            strongest("sso:x", &[&core, &no_raise]).unwrap().max_raise,
            None
        );
    }
}
