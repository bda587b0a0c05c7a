//! What every answer carries, and which `Host` names are served.
//!
//! - Security headers on every response: no MIME sniffing, no framing by other sites (the
//!   dashboard cannot be overlaid for clickjacking), no `Referer` leaving the page, and a
//!   Content-Security-Policy — the restrictive `default-src 'none'` unless the handler set its
//!   own (the dashboard's allows its own scripts and styles, nothing inline, nothing remote).
//! - The host allow-list (`serve.allowed_hosts`), when set: a request naming another host gets
//!   `421`. A browser page on another site that rebinds its DNS name to this server's address
//!   sends its own name as `Host`, so it reaches nothing. Liveness and readiness probes are
//!   exempt: orchestrators call them by address.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;

use crate::json_error;

/// The policy of every answer that does not set its own: nothing may be loaded or framed.
pub const DEFAULT_CSP: &str = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'";

/// The dashboard's policy: its own scripts, styles and API; nothing inline, nothing remote.
pub const DASHBOARD_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The settings of [`guard`].
#[derive(Debug, Clone, Default)]
pub struct Guard {
    /// Host names served (lower case, without port); empty: any.
    allowed_hosts: Arc<[String]>,
}

impl Guard {
    pub fn new<S: AsRef<str>>(allowed_hosts: impl IntoIterator<Item = S>) -> Guard {
        let hosts: Vec<String> = allowed_hosts
            .into_iter()
            .map(|h| h.as_ref().trim().to_ascii_lowercase())
            .filter(|h| !h.is_empty())
            .collect();
        Guard {
            allowed_hosts: hosts.into(),
        }
    }

    /// Whether a `Host` header value names a served host.
    pub fn host_allowed(&self, host: Option<&str>) -> bool {
        if self.allowed_hosts.is_empty() {
            return true;
        }
        let Some(host) = host.map(host_name) else {
            return false;
        };
        self.allowed_hosts
            .iter()
            .any(|h| h.eq_ignore_ascii_case(host))
    }
}

/// The name part of a `Host` value: `example.com:8080` → `example.com`, `[::1]:80` → `[::1]`.
fn host_name(host: &str) -> &str {
    let host = host.trim();
    if host.starts_with('[') {
        return host.find(']').map_or(host, |end| &host[..=end]);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

/// Middleware for every route (`axum::middleware::from_fn_with_state`).
pub async fn guard(State(g): State<Guard>, req: Request, next: Next) -> Response {
    let probe = matches!(req.uri().path(), "/healthz" | "/readyz");
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok());
    let mut response = if probe || g.host_allowed(host) {
        next.run(req).await
    } else {
        json_error(
            StatusCode::MISDIRECTED_REQUEST,
            "host_not_allowed",
            "this server does not serve that host name (serve.allowed_hosts)",
        )
    };
    secure(&mut response);
    response
}

/// Adds the security headers a response lacks.
pub fn secure(response: &mut Response) {
    let h = response.headers_mut();
    let set = |h: &mut axum::http::HeaderMap, name: HeaderName, value: &'static str| {
        if !h.contains_key(&name) {
            h.insert(name, HeaderValue::from_static(value));
        }
    };
    set(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(h, header::X_FRAME_OPTIONS, "DENY");
    set(h, header::REFERRER_POLICY, "no-referrer");
    set(h, header::CONTENT_SECURITY_POLICY, DEFAULT_CSP);
    set(
        h,
        HeaderName::from_static("cross-origin-resource-policy"),
        "same-origin",
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_are_matched_without_port_or_case() {
        let open = Guard::default();
        assert!(open.host_allowed(None));
        assert!(open.host_allowed(Some("evil.example")));
        let g = Guard::new(["Stock.Example.com", "127.0.0.1", "[::1]", " "]);
        for ok in [
            "stock.example.com",
            "STOCK.example.com:8080",
            "127.0.0.1:8080",
            "[::1]:8080",
            "[::1]",
        ] {
            assert!(g.host_allowed(Some(ok)), "{ok}");
        }
        for bad in [
            "evil.example",
            "stock.example.com.evil.example",
            "127.0.0.2",
            "",
        ] {
            assert!(!g.host_allowed(Some(bad)), "{bad}");
        }
        assert!(!g.host_allowed(None));
    }
}
