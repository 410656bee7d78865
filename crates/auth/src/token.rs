//! Registry bearer tokens: the JWTs `/service/token` issues and `/v2` accepts.
//!
//! ES256 with a P-256 key (the issue allows RS256 or ES256; a P-256 key is generated in
//! microseconds and its signatures are small). Claims follow Harbor's issuer: `iss`
//! `harbor-token-issuer`, `aud` the service, `access: [{type, name, actions}]`, a `kid` header in
//! libtrust's key-id format.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, Header, Validation};
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey, LineEnding};
use serde::{Deserialize, Serialize};
use sha2::Digest as _;

pub const ISSUER: &str = "harbor-token-issuer";
pub const SERVICE: &str = "harbor-registry";

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("invalid signing key: {0}")]
    Key(String),
    #[error("invalid token: {0}")]
    Invalid(String),
    #[error("the system's random source failed: {0}")]
    Random(String),
}

/// One grant in a token: `{"type":"repository","name":"library/app","actions":["pull"]}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessEntry {
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    pub actions: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: u64,
    pub nbf: u64,
    pub iat: u64,
    pub jti: String,
    pub access: Vec<AccessEntry>,
    /// Berth's own claim: what the token was issued against, checked again on every use, so
    /// that a revoked grant ends at once rather than at the token's expiry. Harbor's clients
    /// ignore claims they do not know.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub berth: Option<IssuedAgainst>,
}

/// The facts a token's grants rest on.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuedAgainst {
    /// The user's or robot's id (0: anonymous); a subject deleted and re-created under the
    /// same name has another.
    pub id: i64,
    /// Whether the subject is a robot account.
    #[serde(default)]
    pub robot: bool,
    /// The version of the credential the token was issued for (a password change or a new
    /// robot secret makes another).
    #[serde(default)]
    pub credential: String,
    /// The id of each project a grant is in, by name: a project deleted and re-created under
    /// the same name has another.
    #[serde(default)]
    pub projects: std::collections::BTreeMap<String, i64>,
}

/// A token as handed to a client.
pub struct IssuedToken {
    pub token: String,
    pub expires_in: u64,
    pub issued_at: SystemTime,
}

/// Tokens whose signature was checked, so that a client presenting the same token with every
/// request costs one ES256 verification, not one per request. Keyed by the token's SHA-256;
/// each entry still ends at the token's own expiry.
/// Bounded by the bytes its claims take, not by a count: a count let 1,000 tokens of 1,500
/// scopes each hold 300 MB.
#[derive(Default)]
struct VerifiedTokens {
    entries: std::sync::Mutex<(std::collections::HashMap<[u8; 32], Claims>, usize)>,
}

/// Bytes of claims the verified tokens may hold (each is verified again once forgotten).
const VERIFIED_TOKENS_BYTES: usize = 16 << 20;
/// The most grants one token carries; `/service/token` refuses a request for more. Clients ask
/// for a handful (a pull, a push with its mounts).
pub const MAX_SCOPES: usize = 64;
/// The longest token accepted: anything longer was not issued here and is refused before
/// any work (a token with [`MAX_SCOPES`] grants of the longest names is well under it).
pub const MAX_TOKEN_BYTES: usize = 64 << 10;

/// About what a claims value holds in memory.
fn claims_bytes(c: &Claims) -> usize {
    let strings = c.iss.len() + c.sub.len() + c.aud.len() + c.jti.len();
    let grants: usize = c
        .access
        .iter()
        .map(|e| e.kind.len() + e.name.len() + e.actions.iter().map(|a| a.len() + 24).sum::<usize>() + 72)
        .sum();
    let against =
        c.berth.as_ref().map_or(0, |b| b.credential.len() + b.projects.keys().map(|k| k.len() + 56).sum::<usize>());
    std::mem::size_of::<Claims>() + 32 + strings + grants + against
}
/// Seconds of clock difference allowed on `exp` and `nbf`.
const LEEWAY: u64 = 5;

/// Whether claims are within their validity period at `now` (seconds since the epoch).
fn current(claims: &Claims, now: u64) -> bool {
    now < claims.exp + LEEWAY && claims.nbf <= now + LEEWAY
}

impl VerifiedTokens {
    fn get(&self, key: &[u8; 32], now: u64) -> Option<Claims> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.0.get(key).filter(|c| current(c, now)).cloned()
    }

    fn insert(&self, key: [u8; 32], claims: &Claims, now: u64) {
        let size = claims_bytes(claims);
        let mut guard = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let (entries, bytes) = &mut *guard;
        if *bytes + size > VERIFIED_TOKENS_BYTES {
            entries.retain(|_, c| current(c, now));
            *bytes = entries.values().map(claims_bytes).sum();
            if *bytes + size > VERIFIED_TOKENS_BYTES {
                entries.clear();
                *bytes = 0;
            }
        }
        if let Some(old) = entries.insert(key, claims.clone()) {
            *bytes -= claims_bytes(&old);
        }
        *bytes += size;
    }

    #[cfg(test)]
    fn bytes(&self) -> usize {
        self.entries.lock().unwrap_or_else(|p| p.into_inner()).1
    }
}

pub struct TokenIssuer {
    verified: VerifiedTokens,
    /// ring's key pair: see [`TokenIssuer::sign`].
    signing: ring::signature::EcdsaKeyPair,
    decoding: DecodingKey,
    kid: String,
    lifetime: Duration,
}

/// A new P-256 private key, as a PKCS#8 PEM document.
pub fn generate_key_pem() -> Result<String, TokenError> {
    loop {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| TokenError::Random(e.to_string()))?;
        // A random 32-byte string is a valid scalar except with negligible probability.
        if let Ok(key) = p256::SecretKey::from_slice(&bytes) {
            let pem = key.to_pkcs8_pem(LineEnding::LF).map_err(|e| TokenError::Key(e.to_string()))?;
            return Ok(pem.to_string());
        }
    }
}

/// libtrust's key id: the SHA-256 of the DER public key, first 240 bits, base32, in groups of 4.
fn libtrust_kid(public_der: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let digest = sha2::Sha256::digest(public_der);
    let bits = &digest[..30];
    let mut out = String::new();
    let (mut acc, mut n) = (0u32, 0u32);
    for &b in bits {
        acc = (acc << 8) | u32::from(b);
        n += 8;
        while n >= 5 {
            n -= 5;
            out.push(ALPHABET[((acc >> n) & 31) as usize] as char);
        }
    }
    out.as_bytes().chunks(4).map(|c| String::from_utf8_lossy(c).into_owned()).collect::<Vec<_>>().join(":")
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

impl TokenIssuer {
    /// An issuer signing with the P-256 private key in PEM, PKCS#8 or SEC1 (`EC PRIVATE KEY`,
    /// what openssl's `ecparam -genkey` and Helm's `genPrivateKey "ecdsa"` write), for tokens
    /// that live `lifetime`.
    pub fn from_pem(private_pem: &str, lifetime: Duration) -> Result<TokenIssuer, TokenError> {
        let key = if private_pem.contains("-----BEGIN EC PRIVATE KEY-----") {
            p256::SecretKey::from_sec1_pem(private_pem)
        } else {
            p256::SecretKey::from_pkcs8_pem(private_pem).map_err(Into::into)
        }
        .map_err(|e| TokenError::Key(e.to_string()))?;
        let public = key.public_key();
        let public_der = public.to_public_key_der().map_err(|e| TokenError::Key(e.to_string()))?;
        let public_pem = public.to_public_key_pem(LineEnding::LF).map_err(|e| TokenError::Key(e.to_string()))?;
        let private_der = key.to_pkcs8_der().map_err(|e| TokenError::Key(e.to_string()))?;
        let signing = ring::signature::EcdsaKeyPair::from_pkcs8(
            &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            private_der.as_bytes(),
            &ring::rand::SystemRandom::new(),
        )
        .map_err(|e| TokenError::Key(format!("the signing key: {e}")))?;
        let decoding = DecodingKey::from_ec_pem(public_pem.as_bytes()).map_err(|e| TokenError::Key(e.to_string()))?;
        Ok(TokenIssuer {
            verified: VerifiedTokens::default(),
            signing,
            decoding,
            kid: libtrust_kid(public_der.as_bytes()),
            lifetime,
        })
    }

    pub fn lifetime(&self) -> Duration {
        self.lifetime
    }

    /// Signs a token for `subject` with the given grants, living the issuer's lifetime.
    pub fn issue(
        &self,
        subject: &str,
        access: Vec<AccessEntry>,
        against: IssuedAgainst,
    ) -> Result<IssuedToken, TokenError> {
        self.issue_for(subject, access, against, self.lifetime)
    }

    /// Signs a token for `subject` with the given grants, living `lifetime` (the
    /// `token_expiration` setting, which may change while the issuer lives).
    pub fn issue_for(
        &self,
        subject: &str,
        access: Vec<AccessEntry>,
        against: IssuedAgainst,
        lifetime: Duration,
    ) -> Result<IssuedToken, TokenError> {
        if access.len() > MAX_SCOPES {
            return Err(TokenError::Invalid(format!("at most {MAX_SCOPES} scopes in one token")));
        }
        let now = SystemTime::now();
        let iat = unix(now);
        let claims = Claims {
            iss: ISSUER.into(),
            sub: subject.into(),
            aud: SERVICE.into(),
            exp: iat + lifetime.as_secs(),
            nbf: iat,
            iat,
            jti: crate::secret::random_alphanumeric(16).map_err(|e| TokenError::Random(e.to_string()))?,
            access,
            berth: Some(against),
        };
        let token = self.sign(&claims)?;
        Ok(IssuedToken { token, expires_in: lifetime.as_secs(), issued_at: now })
    }

    /// A compact JWS (ES256) of `claims`. Signed with ring, not through jsonwebtoken's RustCrypto
    /// backend: ring's P-256 is several times faster, and issuing tokens is a hot path (every
    /// docker login and pull asks for one).
    fn sign(&self, claims: &Claims) -> Result<String, TokenError> {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        let header = serde_json::to_vec(&header).map_err(|e| TokenError::Key(e.to_string()))?;
        let claims = serde_json::to_vec(claims).map_err(|e| TokenError::Key(e.to_string()))?;
        let mut token = format!("{}.{}", b64.encode(header), b64.encode(claims));
        let signature = self
            .signing
            .sign(&ring::rand::SystemRandom::new(), token.as_bytes())
            .map_err(|e| TokenError::Key(format!("signing: {e}")))?;
        // One signature per token: the low-s form (ring may give either; both verify, and a
        // token must have exactly one valid encoding).
        let signature = p256::ecdsa::Signature::from_slice(signature.as_ref())
            .map_err(|e| TokenError::Key(format!("signing: {e}")))?;
        let signature = signature.normalize_s().unwrap_or(signature);
        token.push('.');
        token.push_str(&b64.encode(signature.to_bytes()));
        Ok(token)
    }

    /// Verifies signature, issuer, audience and validity period; returns the claims.
    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(TokenError::Invalid("token too long".into()));
        }
        let key: [u8; 32] = sha2::Sha256::digest(token.as_bytes()).into();
        let now = unix(SystemTime::now());
        if let Some(claims) = self.verified.get(&key, now) {
            return Ok(claims);
        }
        let mut validation = Validation::new(Algorithm::ES256);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[SERVICE]);
        validation.validate_nbf = true;
        validation.leeway = LEEWAY;
        high_s_refused(token)?;
        let claims = jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation)
            .map(|d| d.claims)
            .map_err(|e| TokenError::Invalid(e.to_string()))?;
        self.verified.insert(key, &claims, now);
        Ok(claims)
    }
}

/// A signature whose `s` is in the high half verifies as well as its low twin: the same token
/// would have two encodings (two cache keys, two ids in logs). Only the low-s form is ours.
fn high_s_refused(token: &str) -> Result<(), TokenError> {
    use base64::Engine as _;
    let sig = token.rsplit('.').next().unwrap_or_default();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(sig)
        .map_err(|_| TokenError::Invalid("signature is not base64url".into()))?;
    let signature =
        p256::ecdsa::Signature::from_slice(&bytes).map_err(|_| TokenError::Invalid("not an ES256 signature".into()))?;
    match signature.normalize_s() {
        Some(_) => Err(TokenError::Invalid("signature is not in low-s form".into())),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One key, as `openssl ecparam -genkey` wrote it (SEC1) and as `openssl pkcs8 -topk8`
    /// rewrote it.
    const SEC1_KEY: &str = "-----BEGIN EC PRIVATE KEY-----
MHcCAQEEICUOx8QkaIk5sNQMUcmL3Eo6PM4JpaxwTmwvaOWnTvlMoAoGCCqGSM49
AwEHoUQDQgAEwjOmszlIraJKfvSwfDincl9K2PIeWEKWJcAtyErc6wJojDTvIt5h
vS9hvIK/klJva//gOl1IdtCdcgEnjTkhnQ==
-----END EC PRIVATE KEY-----
";
    const PKCS8_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgJQ7HxCRoiTmw1AxR
yYvcSjo8zgmlrHBObC9o5adO+UyhRANCAATCM6azOUitokp+9LB8OKdyX0rY8h5Y
QpYlwC3IStzrAmiMNO8i3mG9L2G8gr+SUm9r/+A6XUh20J1yASeNOSGd
-----END PRIVATE KEY-----
";

    #[test]
    fn a_sec1_key_signs_as_its_pkcs8_form_does() {
        let sec1 = TokenIssuer::from_pem(SEC1_KEY, Duration::from_secs(60)).unwrap();
        let pkcs8 = TokenIssuer::from_pem(PKCS8_KEY, Duration::from_secs(60)).unwrap();
        let token = sec1.issue("admin", vec![], IssuedAgainst::default()).unwrap().token;
        assert!(pkcs8.verify(&token).is_ok(), "the same key either way");
        let token = pkcs8.issue("admin", vec![], IssuedAgainst::default()).unwrap().token;
        assert!(sec1.verify(&token).is_ok());
        let other = TokenIssuer::from_pem(&generate_key_pem().unwrap(), Duration::from_secs(60)).unwrap();
        assert!(other.verify(&token).is_err(), "and not any key");
        assert!(TokenIssuer::from_pem(&SEC1_KEY.replace("MHcC", "MHcD"), Duration::from_secs(60)).is_err());
    }

    #[test]
    fn signatures_are_low_s_and_their_high_s_twins_are_refused() {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let issuer = issuer(60);
        for _ in 0..16 {
            let token = issuer.issue("admin", vec![], IssuedAgainst::default()).unwrap().token;
            assert!(issuer.verify(&token).is_ok());
            let (signed, sig) = token.rsplit_once('.').unwrap();
            let sig = p256::ecdsa::Signature::from_slice(&b64.decode(sig).unwrap()).unwrap();
            assert!(sig.normalize_s().is_none(), "issued high-s");
            // n - s: the same signature, high-s.
            let (r, s) = sig.split_scalars();
            let twin = p256::ecdsa::Signature::from_scalars(r, -*s).unwrap();
            let forged = format!("{signed}.{}", b64.encode(twin.to_bytes()));
            assert!(issuer.verify(&forged).is_err(), "a high-s twin verified");
        }
    }

    #[test]
    fn tokens_and_their_memory_are_bounded() {
        let issuer = issuer(60);
        let entry = |n: usize| AccessEntry {
            kind: "repository".into(),
            name: format!("library/{n}-{}", "x".repeat(200)),
            actions: vec!["pull".into()],
        };
        assert!(issuer.issue("", (0..MAX_SCOPES + 1).map(entry).collect(), IssuedAgainst::default()).is_err());
        let big = issuer.issue("", (0..MAX_SCOPES).map(entry).collect(), IssuedAgainst::default()).unwrap().token;
        assert!(big.len() < MAX_TOKEN_BYTES);
        assert!(issuer.verify(&"a".repeat(MAX_TOKEN_BYTES + 1)).is_err());
        // Many large tokens: the memory of verified ones stays within its bytes.
        for _ in 0..1500 {
            let t = issuer.issue("", (0..MAX_SCOPES).map(entry).collect(), IssuedAgainst::default()).unwrap().token;
            assert!(issuer.verify(&t).is_ok());
        }
        assert!(issuer.verified.bytes() <= VERIFIED_TOKENS_BYTES, "{}", issuer.verified.bytes());
        assert!(issuer.verified.bytes() > 0);
    }

    fn issuer(lifetime: u64) -> TokenIssuer {
        TokenIssuer::from_pem(&generate_key_pem().unwrap(), Duration::from_secs(lifetime)).unwrap()
    }

    fn pull(name: &str) -> Vec<AccessEntry> {
        vec![AccessEntry { kind: "repository".into(), name: name.into(), actions: vec!["pull".into()] }]
    }

    #[test]
    fn remembered_tokens_still_end_at_their_expiry() {
        let iss = issuer(1800);
        let t = iss.issue("alice", pull("library/app"), IssuedAgainst::default()).unwrap();
        let first = iss.verify(&t.token).unwrap();
        assert_eq!(iss.verify(&t.token).unwrap(), first, "remembered");
        // A token altered after being remembered is another key: verified, and refused.
        let mut altered = t.token.clone();
        altered.pop();
        assert!(iss.verify(&altered).is_err());
        // The validity period is checked on every use, remembered or not.
        assert!(current(&first, first.exp));
        assert!(!current(&first, first.exp + LEEWAY));
        assert!(!current(&first, first.nbf.saturating_sub(LEEWAY + 1)));
    }

    #[test]
    fn issued_tokens_verify_with_their_claims() {
        let iss = issuer(1800);
        let t = iss.issue("alice", pull("library/app"), IssuedAgainst::default()).unwrap();
        assert_eq!(t.expires_in, 1800);
        let claims = iss.verify(&t.token).unwrap();
        assert_eq!((claims.sub.as_str(), claims.iss.as_str(), claims.aud.as_str()), ("alice", ISSUER, SERVICE));
        assert_eq!(claims.access, pull("library/app"));
        assert_eq!(claims.exp - claims.iat, 1800);
        let header = jsonwebtoken::decode_header(&t.token).unwrap();
        assert_eq!(header.alg, Algorithm::ES256);
        let kid = header.kid.unwrap();
        assert_eq!(kid.len(), 59, "{kid}");
        assert_eq!(kid.matches(':').count(), 11);
    }

    #[test]
    fn forged_altered_and_expired_tokens_are_refused() {
        let iss = issuer(1800);
        let other = issuer(1800);
        let t = other.issue("mallory", pull("library/app"), IssuedAgainst::default()).unwrap();
        assert!(iss.verify(&t.token).is_err(), "signed by another key");
        let t = iss.issue("alice", pull("library/app"), IssuedAgainst::default()).unwrap();
        let mut parts: Vec<String> = t.token.split('.').map(str::to_string).collect();
        let forged = other.issue("alice", pull("library/secret"), IssuedAgainst::default()).unwrap();
        parts[1] = forged.token.split('.').nth(1).unwrap().to_string();
        assert!(iss.verify(&parts.join(".")).is_err(), "claims swapped");
        assert!(iss.verify("not.a.token").is_err());
        let short = TokenIssuer::from_pem(&generate_key_pem().unwrap(), Duration::from_secs(0)).unwrap();
        let t = short.issue("alice", vec![], IssuedAgainst::default()).unwrap();
        // Past the expiry and the 5-second leeway.
        let mut claims = short.verify(&t.token).unwrap();
        claims.exp = claims.iat.saturating_sub(60);
        claims.nbf = claims.exp;
        let expired = short.sign(&claims).unwrap();
        assert!(short.verify(&expired).is_err());
        // The same claims within their period verify: only the expiry refused them.
        claims.exp = claims.iat + 60;
        claims.nbf = claims.iat;
        assert!(short.verify(&short.sign(&claims).unwrap()).is_ok());
    }

    #[test]
    fn a_pem_round_trips() {
        let pem = generate_key_pem().unwrap();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        let a = TokenIssuer::from_pem(&pem, Duration::from_secs(60)).unwrap();
        let b = TokenIssuer::from_pem(&pem, Duration::from_secs(60)).unwrap();
        assert_eq!(a.kid, b.kid);
        assert!(b.verify(&a.issue("x", vec![], IssuedAgainst::default()).unwrap().token).is_ok());
        assert!(TokenIssuer::from_pem("garbage", Duration::from_secs(1)).is_err());
    }
}
