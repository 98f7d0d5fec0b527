//! The page's files, compiled into the binary: the gateway needs no files at run time and no
//! Node to build.

/// The sign-in page; `<!--MESSAGE-->` is replaced with an error, or nothing.
pub const SIGNIN: &str = include_str!("assets/signin.html");

/// The dashboard; `<!--META-->` is replaced with the session's CSRF token and the regions.
pub const APP: &str = include_str!("assets/app.html");

const FILES: &[(&str, &str, &str)] = &[
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/app.js"),
    ),
    (
        "app.css",
        "text/css; charset=utf-8",
        include_str!("assets/app.css"),
    ),
];

/// The content type and body of an asset.
pub fn get(name: &str) -> Option<(&'static str, &'static str)> {
    FILES
        .iter()
        .find(|(file, _, _)| *file == name)
        .map(|(_, content_type, body)| (*content_type, *body))
}
