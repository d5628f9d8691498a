//! The login, consent, error and sign-out pages: plain server-rendered HTML that works without
//! JavaScript. Every value written into a page goes through `escape`.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;

pub fn escape(text: &str) -> String {
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

const STYLE: &str = "
*{box-sizing:border-box}body{margin:0;font:16px/1.5 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;background:#f3f5f8;color:#1d2433}
main{max-width:420px;margin:8vh auto;background:#fff;border-radius:12px;box-shadow:0 4px 24px rgba(20,30,60,.08);padding:32px}
h1{font-size:1.4rem;margin:0 0 8px}p.lead{color:#5b6475;margin:0 0 24px}
label{display:block;font-weight:600;margin:16px 0 6px}input[type=text],input[type=password]{width:100%;padding:10px 12px;border:1px solid #c9d0dc;border-radius:8px;font-size:1rem}
input:focus{outline:2px solid #2456d3;border-color:#2456d3}.actions{display:flex;gap:12px;margin-top:24px}
button{flex:1;padding:11px;border-radius:8px;border:1px solid #2456d3;font-size:1rem;font-weight:600;cursor:pointer;background:#2456d3;color:#fff}
button.secondary{background:#fff;color:#2456d3}.error{background:#fdecec;color:#a12020;border-radius:8px;padding:10px 12px;margin:0 0 16px}
ul.scopes{padding:0;list-style:none;margin:0}ul.scopes li{padding:10px 12px;border:1px solid #e3e7ee;border-radius:8px;margin:8px 0}
ul.scopes code{font-weight:600}.app{font-weight:700}.alt{text-align:center;margin:20px 0 0}a{color:#2456d3}
input[type=email]{width:100%;padding:10px 12px;border:1px solid #c9d0dc;border-radius:8px;font-size:1rem}
.field-error{color:#a12020;font-weight:600;margin:6px 0 0}.hint{color:#5b6475;font-size:.9rem;margin:4px 0 0}input[aria-invalid=true]{border-color:#a12020}footer{color:#5b6475;font-size:.85rem;margin-top:24px;text-align:center}
";

fn layout(status: StatusCode, title: &str, body: &str) -> HttpResponse {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{title}</title><style>{STYLE}</style></head><body><main>{body}<footer>Partner API platform</footer></main></body></html>",
        title = escape(title)
    );
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header(("cache-control", "no-store"))
        .insert_header(("x-frame-options", "DENY"))
        .insert_header((
            "content-security-policy",
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self' http: https:; frame-ancestors 'none'",
        ))
        .body(html)
}

fn hidden(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(name, value)| {
            format!(
                "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
                escape(name),
                escape(value)
            )
        })
        .collect()
}

/// `app`: the application the person signs in for, when known.
pub fn login(csrf: &str, return_to: &str, app: Option<&str>, error: Option<&str>, username: &str) -> HttpResponse {
    let status = if error.is_some() {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::OK
    };
    let error = error
        .map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>", escape(e)))
        .unwrap_or_default();
    let body = format!(
        "<h1>Sign in</h1><p class=\"lead\">to continue to {app}</p>{error}\
         <form method=\"post\" action=\"/oauth2/login\">{hidden}\
         <label for=\"username\">Username</label><input type=\"text\" id=\"username\" name=\"username\" value=\"{username}\" autocomplete=\"username\" required autofocus>\
         <label for=\"password\">Password</label><input type=\"password\" id=\"password\" name=\"password\" autocomplete=\"current-password\" required>\
         <div class=\"actions\"><button type=\"submit\">Sign in</button></div></form>\
         <p class=\"alt\">New here? <a href=\"/oauth2/sign-up?{sign_up}\">Create an account</a></p>",
        sign_up = escape(&serde_urlencoded::to_string([("return_to", return_to)]).unwrap_or_default()),
        hidden = hidden(&[("csrf", csrf), ("return_to", return_to)]),
        username = escape(username),
        app = app.map_or_else(
            || "the application".to_owned(),
            |a| format!("<span class=\"app\">{}</span>", escape(a))
        ),
    );
    layout(status, "Sign in", &body)
}

/// One line per scope, in words a person understands.
fn describe(scope: &str) -> &'static str {
    match scope {
        "profile" => "See your profile: name, picture, registration date",
        "email" => "See your e-mail address",
        "phone" => "See your phone number",
        "blog:read" => "Read blog articles and comments",
        "blog:write" => "Write articles and comments as you",
        "notifications" => "Manage your notification preferences, devices and inbox",
        "notifications:send" => "Send you notifications",
        "webhooks:manage" => "Manage its webhook endpoints and receive platform events",
        "introspect" => "Check tokens",
        _ => "Access part of your account",
    }
}

pub fn consent(csrf: &str, username: &str, app_name: &str, scopes: &[&str], params: &[(&str, &str)]) -> HttpResponse {
    let items: String = if scopes.is_empty() {
        "<li>Know who you are</li>".to_owned()
    } else {
        scopes
            .iter()
            .map(|s| format!("<li><code>{}</code><br>{}</li>", escape(s), describe(s)))
            .collect()
    };
    let mut fields = vec![("csrf", csrf)];
    fields.extend_from_slice(params);
    let body = format!(
        "<h1>Allow access?</h1><p class=\"lead\"><span class=\"app\">{app}</span> asks to access your account <strong>{user}</strong>:</p>\
         <ul class=\"scopes\">{items}</ul>\
         <form method=\"post\" action=\"/oauth2/consent\">{hidden}\
         <div class=\"actions\"><button type=\"submit\" name=\"decision\" value=\"deny\" class=\"secondary\">Deny</button>\
         <button type=\"submit\" name=\"decision\" value=\"approve\">Allow</button></div></form>\
         <form method=\"post\" action=\"/oauth2/logout\">{logout}<p style=\"text-align:center;margin-top:16px\">Not {user}? <button type=\"submit\" class=\"secondary\" style=\"flex:none;padding:4px 10px\">Sign out</button></p></form>",
        app = escape(app_name),
        user = escape(username),
        hidden = hidden(&fields),
        logout = hidden(&[("csrf", csrf)]),
    );
    layout(StatusCode::OK, "Allow access?", &body)
}

/// What the sign-up form keeps when it comes back with errors (never the password).
#[derive(Debug, Default)]
pub struct SignUpForm<'a> {
    pub return_to: &'a str,
    pub username: &'a str,
    pub email: &'a str,
}

fn field(
    id: &str,
    label: &str,
    kind: &str,
    value: &str,
    autocomplete: &str,
    hint: &str,
    errors: &[(&str, String)],
) -> String {
    let error = errors.iter().find(|(f, _)| *f == id).map(|(_, r)| r.as_str());
    let described = match error {
        Some(_) => format!("{id}-hint {id}-error"),
        None => format!("{id}-hint"),
    };
    format!(
        "<label for=\"{id}\">{label}</label><input type=\"{kind}\" id=\"{id}\" name=\"{id}\" value=\"{value}\" autocomplete=\"{autocomplete}\" required{invalid} aria-describedby=\"{described}\">\
         <p class=\"hint\" id=\"{id}-hint\">{hint}</p>{error}",
        value = escape(value),
        invalid = if error.is_some() { " aria-invalid=\"true\"" } else { "" },
        error = error
            .map(|e| format!("<p class=\"field-error\" id=\"{id}-error\">{}</p>", escape(e)))
            .unwrap_or_default(),
    )
}

/// `errors`: (field, reason), shown beside their fields.
pub fn sign_up(csrf: &str, form: &SignUpForm<'_>, errors: &[(&str, String)]) -> HttpResponse {
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let alert = if errors.is_empty() {
        String::new()
    } else {
        "<p class=\"error\" role=\"alert\">The account was not created: correct the fields marked below.</p>".to_owned()
    };
    let sign_in = if form.return_to.is_empty() {
        String::new()
    } else {
        format!(
            "<p class=\"alt\">Have an account? <a href=\"{}\">Sign in</a></p>",
            escape(form.return_to)
        )
    };
    let body = format!(
        "<h1>Create an account</h1><p class=\"lead\">One account for every application of the platform.</p>{alert}\
         <form method=\"post\" action=\"/oauth2/sign-up\" novalidate>{hidden}{username}{email}{password}\
         <div class=\"actions\"><button type=\"submit\">Create account</button></div></form>{sign_in}",
        hidden = hidden(&[("csrf", csrf), ("return_to", form.return_to)]),
        username = field(
            "username",
            "Username",
            "text",
            form.username,
            "username",
            "3 to 32 characters: letters, digits, _ . -",
            errors
        ),
        email = field(
            "email",
            "E-mail address",
            "email",
            form.email,
            "email",
            "We send a link to confirm it.",
            errors
        ),
        password = field(
            "password",
            "Password",
            "password",
            "",
            "new-password",
            "Long and hard to guess: a few unrelated words work well.",
            errors
        ),
    );
    layout(status, "Create an account", &body)
}

pub fn signed_up() -> HttpResponse {
    layout(
        StatusCode::OK,
        "Account created",
        "<h1>Your account is ready</h1><p class=\"lead\">Check your e-mail: a link confirms your address.</p>",
    )
}

pub fn verified(done: bool) -> HttpResponse {
    if done {
        layout(
            StatusCode::OK,
            "E-mail address confirmed",
            "<h1>Your e-mail address is confirmed</h1><p class=\"lead\">Thank you. You can close this page.</p>",
        )
    } else {
        layout(
            StatusCode::BAD_REQUEST,
            "Link not valid",
            "<h1>This link does not work</h1><p class=\"error\" role=\"alert\">It was used already, has expired (links last a day) or is incomplete.</p>",
        )
    }
}

pub fn error(status: StatusCode, message: &str) -> HttpResponse {
    let body = format!(
        "<h1>This request cannot continue</h1><p class=\"error\" role=\"alert\">{}</p><p>Go back to the application and try again.</p>",
        escape(message)
    );
    layout(status, "Error", &body)
}

pub fn signed_out() -> HttpResponse {
    layout(
        StatusCode::OK,
        "Signed out",
        "<h1>You are signed out</h1><p class=\"lead\">You can close this window.</p>",
    )
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            escape("<script>\"x\" & 'y'</script>"),
            "&lt;script&gt;&quot;x&quot; &amp; &#39;y&#39;&lt;/script&gt;"
        );
    }
}
