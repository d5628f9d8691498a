//! Auth's integration tests, in one binary: the OAuth2 endpoints (`oauth`) and the
//! authorization code flow with its pages (`authorize`), asking for a role (`role_requests`), and the settings that stop it at start (`start`).

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

mod authorize;
mod oauth;
mod role_requests;
mod start;
