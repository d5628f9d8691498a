//! Authorization declared in a handler's signature: `Scoped<BlogRead>` runs the handler only
//! for a caller whose token holds the scope, `ForUser<BlogWrite>` only for one that also acts
//! for a user. A handler body never checks a scope.

use std::future::{Ready, ready};
use std::marker::PhantomData;
use std::ops::Deref;

use actix_web::{FromRequest, HttpRequest};
use http_kit::ApiError;
use ids::UserId;

use crate::Caller;

/// What a handler requires of the caller's token: one of `SCOPES` (the first is the one a
/// refusal names). No scope at all: any signed caller.
pub trait Requirement {
    const SCOPES: &'static [&'static str];
}

/// Any caller the gateway signed for, whatever its scopes.
pub struct AnyScope;

impl Requirement for AnyScope {
    const SCOPES: &'static [&'static str] = &[];
}

fn check<R: Requirement>(caller: &Caller) -> Result<(), ApiError> {
    match R::SCOPES {
        [] => Ok(()),
        scopes if scopes.iter().any(|s| caller.0.has_scope(s)) => Ok(()),
        [first, ..] => caller.require_scope(first),
    }
}

/// A caller whose token meets `R` (else 403 `insufficient_scope`).
pub struct Scoped<R> {
    pub caller: Caller,
    _requirement: PhantomData<R>,
}

impl<R> Deref for Scoped<R> {
    type Target = Caller;

    fn deref(&self) -> &Caller {
        &self.caller
    }
}

impl<R: Requirement> FromRequest for Scoped<R> {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        ready(crate::caller::admit(req).and_then(|caller| {
            check::<R>(&caller)?;
            Ok(Self {
                caller,
                _requirement: PhantomData,
            })
        }))
    }
}

/// A caller whose token meets `R` and acts for a user (a client's own token: 403).
pub struct ForUser<R> {
    pub caller: Caller,
    /// The user the token acts for.
    pub user: UserId,
    _requirement: PhantomData<R>,
}

impl<R> Deref for ForUser<R> {
    type Target = Caller;

    fn deref(&self) -> &Caller {
        &self.caller
    }
}

impl<R: Requirement> FromRequest for ForUser<R> {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        ready(crate::caller::admit(req).and_then(|caller| {
            check::<R>(&caller)?;
            let user = caller.user()?.to_owned();
            Ok(Self {
                caller,
                user,
                _requirement: PhantomData,
            })
        }))
    }
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;
    use actix_web::{ResponseError, web};

    use super::*;
    use crate::{Identity, IdentitySettings, sign};

    struct Reads;
    impl Requirement for Reads {
        const SCOPES: &'static [&'static str] = &["blog:read", "blog:write"];
    }

    const SECRET: &str = "a-secret-of-sixteen-chars";

    fn request(subject: &str, scope: &str) -> HttpRequest {
        let identity = Identity::from_wire(subject, "app", scope.into(), None).unwrap();
        let mut req = TestRequest::default()
            .insert_header(("x-request-id", "r"))
            .app_data(web::Data::new(IdentitySettings {
                secret: SECRET.to_owned().into(),
                max_age: settings::Span::from_secs(60),
            }));
        for header in sign(&identity, SECRET.as_bytes(), "r", crate::now_secs()) {
            req = req.insert_header(header);
        }
        req.to_http_request()
    }

    fn status<T>(outcome: Result<T, ApiError>) -> u16 {
        outcome.map_or_else(|e| e.status_code().as_u16(), |_| 200)
    }

    async fn scoped<R: Requirement>(req: &HttpRequest) -> Result<Scoped<R>, ApiError> {
        Scoped::<R>::from_request(req, &mut actix_web::dev::Payload::None).await
    }

    async fn for_user<R: Requirement>(req: &HttpRequest) -> Result<ForUser<R>, ApiError> {
        ForUser::<R>::from_request(req, &mut actix_web::dev::Payload::None).await
    }

    #[actix_web::test]
    async fn requirements_refuse_with_the_first_scope_named() {
        assert_eq!(
            status(scoped::<Reads>(&request("u1", "blog:write")).await),
            200,
            "any of"
        );
        let refused = scoped::<Reads>(&request("u1", "profile")).await.err().unwrap();
        assert_eq!(refused.status_code().as_u16(), 403);
        let response = refused.error_response();
        let challenge = response
            .headers()
            .get("www-authenticate")
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        assert!(challenge.contains("scope=\"blog:read\""), "{challenge}");
        assert_eq!(status(scoped::<AnyScope>(&request("u1", "")).await), 200);
        let unsigned = TestRequest::default()
            .app_data(web::Data::new(IdentitySettings {
                secret: SECRET.to_owned().into(),
                max_age: settings::Span::from_secs(60),
            }))
            .to_http_request();
        assert_eq!(status(scoped::<AnyScope>(&unsigned).await), 401);
    }

    #[actix_web::test]
    async fn for_user_refuses_a_client_token() {
        let user = for_user::<Reads>(&request("u1", "blog:read")).await.ok().unwrap();
        assert_eq!(user.user, "u1");
        assert_eq!(status(for_user::<Reads>(&request("app", "blog:read")).await), 403);
        assert_eq!(status(for_user::<Reads>(&request("u1", "profile")).await), 403);
    }
}
