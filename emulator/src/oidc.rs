//! OIDC identity providers and the checks AWS makes on a web identity token before
//! `AssumeRoleWithWebIdentity` looks at a role's trust policy: a signature by one of the
//! issuer's keys, the issuer, an audience among the provider's client IDs, and the expiry.
//! The `sub` is checked later, against the trust rule.

use chrono::{DateTime, Utc};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{AlgorithmFamily, DecodingKey, Validation};
use serde::Deserialize;

use crate::config::OidcProviderConfig;

/// A registered provider with its keys parsed.
#[derive(Debug, Clone)]
pub struct OidcProvider {
    pub account_id: String,
    pub issuer: String,
    pub arn: String,
    pub client_ids: Vec<String>,
    pub keys: JwkSet,
}

/// The claims of a token that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedToken {
    pub issuer: String,
    pub subject: String,
    pub audience: String,
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenRejection {
    /// Not a JWT, or claims missing or of the wrong type.
    Malformed(String),
    /// No key of the provider verifies the signature.
    BadSignature(String),
    /// The `aud` is none of the provider's client IDs.
    WrongAudience,
    /// `exp` has passed.
    Expired {
        expired_at: DateTime<Utc>,
        now: DateTime<Utc>,
    },
    /// `nbf` lies in the future.
    NotYetValid,
}

#[derive(Deserialize)]
struct UnverifiedClaims {
    iss: Option<String>,
}

#[derive(Deserialize)]
struct Claims {
    iss: String,
    sub: String,
    exp: i64,
    #[serde(default)]
    nbf: Option<i64>,
    aud: Audience,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

/// The `iss` claim of a token, read *without* verifying anything: only to find the provider
/// whose keys will verify it.
pub fn unverified_issuer(token: &str) -> Result<String, TokenRejection> {
    jsonwebtoken::dangerous::insecure_decode_claims::<UnverifiedClaims>(token)
        .map_err(|err| TokenRejection::Malformed(err.to_string()))?
        .iss
        .ok_or_else(|| TokenRejection::Malformed("the token has no iss claim".to_owned()))
}

/// The issuer as IAM names providers: without a trailing slash.
pub fn normalize_issuer(issuer: &str) -> &str {
    issuer.trim_end_matches('/')
}

impl OidcProvider {
    /// Parses the key set of a provider registration.
    pub fn from_config(config: &OidcProviderConfig, partition: &str) -> Result<Self, String> {
        let keys: JwkSet = serde_json::from_value(config.jwks.clone())
            .map_err(|err| format!("OIDC provider {}: JWKS not readable: {err}", config.issuer))?;
        let issuer = normalize_issuer(&config.issuer).to_owned();
        let host_path = issuer.trim_start_matches("https://");
        Ok(OidcProvider {
            arn: format!(
                "arn:{partition}:iam::{}:oidc-provider/{host_path}",
                config.account_id
            ),
            account_id: config.account_id.clone(),
            issuer,
            client_ids: config.client_ids.clone(),
            keys,
        })
    }

    /// Verifies `token` as of `now`: signature, issuer, audience, expiry.
    pub fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<VerifiedToken, TokenRejection> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|err| TokenRejection::Malformed(err.to_string()))?;
        // Only public-key signatures: a symmetric key in a published JWKS would let anyone sign.
        if !matches!(
            header.alg.family(),
            AlgorithmFamily::Rsa | AlgorithmFamily::Ec | AlgorithmFamily::Ed
        ) {
            return Err(TokenRejection::BadSignature(format!(
                "algorithm {:?} is not accepted",
                header.alg
            )));
        }
        let jwk = match &header.kid {
            Some(kid) => self.keys.find(kid),
            None if self.keys.keys.len() == 1 => self.keys.keys.first(),
            None => None,
        }
        .ok_or_else(|| {
            TokenRejection::BadSignature(format!(
                "no key of the provider has the token's key ID {:?}",
                header.kid.as_deref().unwrap_or("")
            ))
        })?;
        let key = DecodingKey::from_jwk(jwk)
            .map_err(|err| TokenRejection::BadSignature(format!("unusable key: {err}")))?;

        let mut validation = Validation::new(header.alg);
        validation.algorithms = vec![header.alg];
        // The two enums spell algorithms alike (`RS256`, `ES256`, ...).
        if let Some(alg) = &jwk.common.key_algorithm
            && format!("{alg:?}") != format!("{:?}", header.alg)
        {
            return Err(TokenRejection::BadSignature(format!(
                "the key is for {alg:?}, the token is signed with {:?}",
                header.alg
            )));
        }
        // Time and audience are checked below against the emulator's clock and the client IDs,
        // so that each failure gets the answer AWS gives for it.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.set_issuer(&[&self.issuer, &format!("{}/", self.issuer)]);
        validation.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
        let claims = jsonwebtoken::decode::<Claims>(token, &key, &validation)
            .map_err(|err| match err.kind() {
                jsonwebtoken::errors::ErrorKind::InvalidSignature
                | jsonwebtoken::errors::ErrorKind::InvalidAlgorithm
                | jsonwebtoken::errors::ErrorKind::InvalidEcdsaKey
                | jsonwebtoken::errors::ErrorKind::InvalidRsaKey(_) => {
                    TokenRejection::BadSignature(err.to_string())
                }
                _ => TokenRejection::Malformed(err.to_string()),
            })?
            .claims;

        let audiences = match claims.aud {
            Audience::One(aud) => vec![aud],
            Audience::Many(auds) => auds,
        };
        let audience = audiences
            .into_iter()
            .find(|aud| self.client_ids.contains(aud))
            .ok_or(TokenRejection::WrongAudience)?;
        let expired_at = DateTime::from_timestamp(claims.exp, 0).unwrap_or(DateTime::UNIX_EPOCH);
        if expired_at <= now {
            return Err(TokenRejection::Expired { expired_at, now });
        }
        if claims.nbf.is_some_and(|nbf| nbf > now.timestamp()) {
            return Err(TokenRejection::NotYetValid);
        }
        Ok(VerifiedToken {
            issuer: normalize_issuer(&claims.iss).to_owned(),
            subject: claims.sub,
            audience,
        })
    }
}
