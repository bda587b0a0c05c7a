//! Bearer tokens (RFC 6750 §2.1): `Authorization: Bearer <token>`, the scheme in any case.
//!
//! A token is only ever read from the header: a query string ends up in access logs, browser
//! history and `Referer` headers. Comparison is constant-time per token and every configured
//! token is compared, so the time taken tells neither how much of a guess was right nor which
//! token matched.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use subtle::ConstantTimeEq;

use crate::json_error;

/// The token presented in `Authorization: Bearer <token>`, if any. The scheme is matched
/// without regard to case (RFC 9110 §11.1); surrounding spaces are not part of the token.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim_start().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = token.trim_matches(' ');
    (!token.is_empty()).then_some(token)
}

/// The tokens one scope accepts (ingest, read). Empty: that scope needs no token.
#[derive(Clone, Default)]
pub struct TokenSet {
    tokens: Arc<[Box<[u8]>]>,
}

impl std::fmt::Debug for TokenSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TokenSet({} configured)", self.tokens.len())
    }
}

impl TokenSet {
    /// The non-empty tokens of `tokens`.
    pub fn new<S: AsRef<str>>(tokens: impl IntoIterator<Item = S>) -> TokenSet {
        let tokens: Vec<Box<[u8]>> = tokens
            .into_iter()
            .filter_map(|t| {
                let t = t.as_ref().trim();
                (!t.is_empty()).then(|| Box::from(t.as_bytes()))
            })
            .collect();
        TokenSet {
            tokens: tokens.into(),
        }
    }

    /// No token configured: the scope is open.
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// Whether `presented` is one of the tokens, in time independent of where it differs.
    pub fn matches(&self, presented: &str) -> bool {
        let presented = presented.as_bytes();
        let mut ok = subtle::Choice::from(0);
        for t in self.tokens.iter() {
            // lengths are compared in the open (a token's length is no secret worth the cost);
            // equal lengths in constant time
            if t.len() == presented.len() {
                ok |= t.as_ref().ct_eq(presented);
            }
        }
        ok.into()
    }

    /// Whether the request's headers carry one of the tokens (always, when none is configured).
    pub fn admits(&self, headers: &HeaderMap) -> bool {
        self.is_empty() || bearer(headers).is_some_and(|t| self.matches(t))
    }
}

/// The `401` answer, with the challenge of RFC 6750.
pub fn unauthorized(what: &str) -> Response {
    let mut r = json_error(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        format!("{what} needs an `Authorization: Bearer <token>` header with a valid token"),
    );
    r.headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    r
}

/// Middleware: the request must carry one of `tokens` (`axum::middleware::from_fn_with_state`).
pub async fn require(State(tokens): State<TokenSet>, req: Request, next: Next) -> Response {
    if tokens.admits(req.headers()) {
        next.run(req).await
    } else {
        unauthorized("this endpoint")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(auth: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(auth).expect("header"),
        );
        h
    }

    #[test]
    fn the_scheme_is_case_insensitive_and_the_token_exact() {
        for ok in [
            "Bearer s3cr3t",
            "bearer s3cr3t",
            "BEARER s3cr3t",
            "Bearer  s3cr3t ",
        ] {
            assert_eq!(bearer(&headers(ok)), Some("s3cr3t"), "{ok:?}");
        }
        for bad in [
            "Basic s3cr3t",
            "Bearer",
            "Bearer ",
            "Bearers3cr3t",
            "s3cr3t",
        ] {
            assert_eq!(bearer(&headers(bad)), None, "{bad:?}");
        }
        let set = TokenSet::new(["s3cr3t", "a+b/c=", ""]);
        assert_eq!(set.len(), 2);
        assert!(set.admits(&headers("bearer s3cr3t")));
        assert!(set.admits(&headers("Bearer a+b/c=")));
        assert!(!set.admits(&headers("Bearer s3cr3T")));
        assert!(!set.admits(&headers("Bearer s3cr3")));
        assert!(!set.admits(&headers("Bearer s3cr3tt")));
        assert!(!set.admits(&HeaderMap::new()));
        assert!(TokenSet::new(Vec::<String>::new()).admits(&HeaderMap::new()));
    }
}
