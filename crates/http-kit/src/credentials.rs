//! The credentials an `Authorization` header carries, by scheme (the scheme is matched without
//! regard to case, as RFC 9110 §11.1 says).

use actix_web::HttpRequest;
use actix_web::http::header;

fn of_scheme<'a>(req: &'a HttpRequest, scheme: &str) -> Option<&'a str> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (name, credentials) = value.split_at_checked(scheme.len())?;
    let credentials = credentials.strip_prefix(' ')?.trim();
    (name.eq_ignore_ascii_case(scheme) && !credentials.is_empty()).then_some(credentials)
}

/// An RFC 6750 bearer token.
pub fn bearer(req: &HttpRequest) -> Option<&str> {
    of_scheme(req, "Bearer")
}

/// `Basic` credentials, still base64-encoded.
pub fn basic(req: &HttpRequest) -> Option<&str> {
    of_scheme(req, "Basic")
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    #[test]
    fn schemes_are_told_apart_case_blind() {
        let req = |value: &str| {
            TestRequest::default()
                .insert_header((header::AUTHORIZATION, value))
                .to_http_request()
        };
        assert_eq!(bearer(&req("Bearer abc")), Some("abc"));
        assert_eq!(bearer(&req("bearer  abc ")), Some("abc"));
        assert_eq!(bearer(&req("Bearer ")), None);
        assert_eq!(bearer(&req("Bearerabc")), None);
        assert_eq!(bearer(&req("Basic abc")), None);
        assert_eq!(basic(&req("BASIC dTpw")), Some("dTpw"));
        assert_eq!(basic(&TestRequest::default().to_http_request()), None);
    }
}
