//! `/admin/`: the team dashboard, a page embedded in the binary (plain HTML, CSS and JS in
//! `assets/`, no build step) that manages keys and shows usage and region status.
//!
//! The page calls the same JSON API as the CLI's HTTP users (`/admin/keys`, `/admin/usage`),
//! plus `/admin/status` (regions and failovers as JSON) and `/admin/usage.csv`; no second API.
//! `server::auth::require_admin` lets every `/admin` request in with either the bearer token
//! (unchanged) or a session cookie from [`login`]: with the cookie, a `POST` or `DELETE`
//! must also carry the session's CSRF token in `x-csrf-token` (else 403). The page reads the
//! token from a `<meta>` tag of the HTML, which only a signed-in browser gets.
//!
//! Public without a session (still 404 when no admin token is configured): the page itself
//! (the sign-in form when not signed in), its assets and the sign-in `POST /admin/login`,
//! which counts wrong tokens in the same per-address throttle as the bearer token.
//!
//! Every `/admin` answer carries a strict `Content-Security-Policy` (nothing inline, nothing
//! from another origin), `X-Frame-Options: DENY`, `nosniff`, `no-referrer` and `no-store`.

mod assets;
pub mod session;
mod status;

use super::AppState;
use crate::auth::{AuthError, admin};
use crate::calendar;
use crate::error::ApiError;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use session::Session;
use std::net::SocketAddr;
use std::time::Instant;

pub use status::status;

/// The policy of every `/admin` answer: scripts, styles and fetches from this origin only.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Sets the dashboard's security headers on an `/admin` answer (kept when a handler set one).
pub fn harden(headers: &mut HeaderMap) {
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, "no-store"),
    ] {
        headers
            .entry(name)
            .or_insert_with(|| HeaderValue::from_static(value));
    }
}

fn html(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response()
}

/// `&`, `<`, `>`, `"` and `'` as entities, for the few values put into the HTML.
fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn signin_page(status: StatusCode, message: Option<&str>) -> Response {
    let message = message.map_or_else(String::new, |m| {
        format!(
            "<p class=\"error\" role=\"alert\" id=\"signin-error\">{}</p>",
            escape_html(m)
        )
    });
    html(status, assets::SIGNIN.replace("<!--MESSAGE-->", &message))
}

/// `GET /admin` → `/admin/` (the page's relative asset paths need the slash).
pub async fn to_index() -> Response {
    (
        StatusCode::PERMANENT_REDIRECT,
        [(header::LOCATION, "/admin/")],
    )
        .into_response()
}

/// `GET /admin/`: the dashboard for a signed-in browser, else the sign-in form.
pub async fn index(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some(session) = state.sessions.verify(&headers, calendar::now_secs()) else {
        return signin_page(StatusCode::OK, None);
    };
    let regions: Vec<&str> = state.settings.regions.keys().map(String::as_str).collect();
    let meta = format!(
        "<meta name=\"csrf-token\" content=\"{}\">\n  <meta name=\"regions\" content=\"{}\">\n  <meta name=\"session-expires\" content=\"{}\">",
        escape_html(&state.sessions.csrf_token(&session)),
        escape_html(&regions.join(",")),
        session.expires_at
    );
    html(StatusCode::OK, assets::APP.replace("<!--META-->", &meta))
}

/// `GET /admin/assets/{file}`: the page's script and style sheet.
pub async fn asset(Path(file): Path<String>) -> Response {
    match assets::get(&file) {
        Some((content_type, body)) => {
            ([(header::CONTENT_TYPE, content_type)], body).into_response()
        }
        None => {
            ApiError::not_found(format!("Unknown path '/admin/assets/{file}'.")).into_response()
        }
    }
}

/// A form post from another site is refused: sign-in is for the page this gateway served.
/// Browsers say where a request comes from in `Sec-Fetch-Site` (kept under the page's
/// `no-referrer` policy, which turns `Origin` into `null`); older ones in `Origin`. Clients
/// sending neither (curl) are not browsers.
fn same_origin(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site") {
        return matches!(site.as_bytes(), b"same-origin" | b"none");
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let origin_host = origin
        .to_str()
        .ok()
        .and_then(|o| o.split_once("://"))
        .map(|(_, rest)| rest);
    matches!((origin_host, host), (Some(o), Some(h)) if o.eq_ignore_ascii_case(h))
}

/// `POST /admin/login` with the form field `token`: the right admin token → a session cookie
/// and `303` to the page; wrong → `401` with the form again; too many wrong ones from this
/// address → `429` (the admin throttle, shared with the bearer token).
pub async fn login(
    State(state): State<AppState>,
    peer: Option<axum::Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !same_origin(&headers) {
        return signin_page(
            StatusCode::FORBIDDEN,
            Some("Sign-in must come from this gateway's own page."),
        );
    }
    let token: Option<String> = url::form_urlencoded::parse(&body)
        .find(|(name, _)| name == "token")
        .map(|(_, value)| value.trim().to_owned());
    let peer = peer.map(|axum::Extension(ConnectInfo(addr))| addr.ip());
    let admitted = state.auth.admit_admin_token(
        "/admin/login",
        token.as_deref().filter(|t| !t.is_empty()),
        peer,
        Instant::now(),
    );
    match admitted {
        Ok(()) => {}
        Err(AuthError::AdminThrottled { retry_after }) => {
            let secs = retry_after.as_secs();
            let mut response = signin_page(
                StatusCode::TOO_MANY_REQUESTS,
                Some(&format!(
                    "Too many failed sign-in attempts from this address; try again in {secs}s."
                )),
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            return response;
        }
        Err(err @ AuthError::AdminDisabled { .. }) => return ApiError::from(err).into_response(),
        Err(_) => {
            return signin_page(
                StatusCode::UNAUTHORIZED,
                Some("That is not the admin token."),
            );
        }
    }
    let (_, cookie) = match state.sessions.issue(calendar::now_secs()) {
        Ok(issued) => issued,
        Err(err) => {
            tracing::warn!(error = %err, "cannot start a dashboard session");
            return signin_page(
                StatusCode::SERVICE_UNAVAILABLE,
                Some("The gateway cannot start a session now; try again."),
            );
        }
    };
    tracing::info!(client = ?peer, "dashboard sign-in");
    let mut response = (StatusCode::SEE_OTHER, [(header::LOCATION, "/admin/")]).into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

/// `POST /admin/logout` (behind the session and its CSRF token, or the bearer token): the
/// session is refused from now on and the cookie removed.
pub async fn logout(
    State(state): State<AppState>,
    session: Option<axum::Extension<Session>>,
) -> Response {
    if let Some(axum::Extension(session)) = session {
        state.sessions.revoke(&session, calendar::now_secs());
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    if let Ok(value) = HeaderValue::from_str(&state.sessions.clear_cookie()) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

/// `GET /admin/usage.csv?from=&to=&key=`: the ledger as a spreadsheet-safe CSV download.
pub async fn usage_csv(
    State(state): State<AppState>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    // `from`/`to`: days (inclusive; `from` also takes `today` or `7d`); `key`: one key id.
    let [from, to, key] = super::admin::query_params(query, ["from", "to", "key"])?
        .map(|value| value.filter(|v| !v.is_empty()));
    let to = match to.as_deref() {
        None => None,
        Some(day) => Some(
            calendar::parse_day(day).ok_or_else(|| AuthError::InvalidParam {
                param: "to",
                message: "Invalid 'to' date: use YYYY-MM-DD.".into(),
            })?,
        ),
    };
    let lines = admin::usage(state.auth.store(), from.as_deref())
        .await
        .inspect_err(|err| tracing::warn!(error = %err, "usage.csv failed"))?;
    let lines: Vec<admin::UsageLine> = lines
        .into_iter()
        .filter(|l| to.as_deref().is_none_or(|to| l.row.day.as_str() <= to))
        .filter(|l| key.as_deref().is_none_or(|key| l.row.key_id == key))
        .collect();
    let name = format!(
        "attachment; filename=\"usage-{}-{}.csv\"",
        from.as_deref()
            .and_then(calendar::since_day)
            .unwrap_or_else(|| "all".into()),
        to.unwrap_or_else(|| "today".into())
    );
    let mut response = (
        [(header::CONTENT_TYPE, "text/csv; charset=utf-8")],
        admin::usage_csv_for_spreadsheets(&lines),
    )
        .into_response();
    if let Ok(value) = HeaderValue::from_str(&name) {
        response
            .headers_mut()
            .insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_must_match_host() {
        let mut headers = HeaderMap::new();
        assert!(same_origin(&headers));
        headers.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
        headers.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:8080"),
        );
        assert!(same_origin(&headers));
        headers.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://evil.example"),
        );
        assert!(!same_origin(&headers));
        headers.insert(header::ORIGIN, HeaderValue::from_static("null"));
        assert!(!same_origin(&headers));
        headers.insert("sec-fetch-site", HeaderValue::from_static("same-origin"));
        assert!(same_origin(&headers));
        headers.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
        assert!(!same_origin(&headers));
    }

    #[test]
    fn html_escaping() {
        assert_eq!(
            escape_html("<a href=\"x\">'&"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;"
        );
    }
}
