//! Values parsed once at the edge; past this module they cannot be invalid.

pub mod applications;
pub mod consents;
pub mod issue;
pub mod revoke;
pub mod users;
pub mod verification;

use std::collections::BTreeSet;
use std::fmt;
use std::net::IpAddr;

use http_kit::extract::excerpt;
use ipnet::IpNet;

use secrecy::SecretString;

pub use values::{FieldErrors, Invalid};

fn invalid(field: &str, reason: impl Into<String>) -> Invalid {
    Invalid::new(field, reason)
}

macro_rules! text_newtype {
    ($name:ident) => {
        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

/// 3 to 32 letters, digits, `_`, `.` or `-`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);
text_newtype!(Username);

impl Username {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let ok_chars = raw.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
        if !(3..=32).contains(&raw.len()) || !ok_chars {
            return Err(invalid("username", "3 to 32 characters: letters, digits, _ . -"));
        }
        Ok(Self(raw.to_owned()))
    }
}

/// A plausible address, lower-cased; proving it is the mailbox's job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);
text_newtype!(Email);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let raw = raw.trim();
        let valid = raw.len() <= 254
            && !raw.chars().any(char::is_whitespace)
            && raw.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty()
                    && !domain.contains('@')
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
            });
        if !valid {
            return Err(invalid("email", "not an e-mail address"));
        }
        Ok(Self(raw.to_ascii_lowercase()))
    }
}

/// A new password: 8 to 128 characters. Never printed.
pub struct NewPassword(SecretString);

impl NewPassword {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let chars = raw.chars().count();
        if !(8..=128).contains(&chars) {
            return Err(invalid("password", "8 to 128 characters"));
        }
        Ok(Self(SecretString::from(raw.to_owned())))
    }

    pub fn secret(&self) -> &SecretString {
        &self.0
    }
}

/// An RFC 6749 scope-token: printable ASCII except space, `"` and `\`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, utoipa::ToSchema)]
#[schema(value_type = String, pattern = r"^[\x21\x23-\x5B\x5D-\x7E]+$")]
pub struct Scope(String);
text_newtype!(Scope);

impl Scope {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let ok = !raw.is_empty()
            && raw
                .bytes()
                .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b));
        if !ok {
            return Err(invalid("scope", format!("`{}` is not a valid scope", excerpt(raw))));
        }
        Ok(Self(raw.to_owned()))
    }
}

/// A set of scopes; written space-separated, in a stable order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scopes(BTreeSet<Scope>);

impl Scopes {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        raw.split(' ')
            .filter(|s| !s.is_empty())
            .map(Scope::parse)
            .collect::<Result<_, _>>()
            .map(Self)
    }

    /// A JSON list of scopes; an error names the entry (`scopes[2]`).
    pub fn from_list<S: AsRef<str>>(list: &[S]) -> Result<Self, Invalid> {
        list.iter()
            .enumerate()
            .map(|(i, s)| Scope::parse(s.as_ref()).map_err(|e| invalid(&format!("scopes[{i}]"), e.reason)))
            .collect::<Result<_, _>>()
            .map(Self)
    }

    pub fn is_subset(&self, of: &Scopes) -> bool {
        self.0.is_subset(&of.0)
    }

    /// Each scope, in order.
    pub fn names(&self) -> Vec<String> {
        self.0.iter().map(|s| s.as_str().to_owned()).collect()
    }

    /// These scopes and those of `other`.
    pub fn union(&self, other: &Scopes) -> Scopes {
        Self(self.0.union(&other.0).cloned().collect())
    }

    /// These scopes but those in `other`.
    pub fn without(&self, other: &Scopes) -> Scopes {
        Self(self.0.difference(&other.0).cloned().collect())
    }
}

impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let words: Vec<&str> = self.0.iter().map(Scope::as_str).collect();
        f.write_str(&words.join(" "))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum GrantType {
    AuthorizationCode,
    ClientCredentials,
    RefreshToken,
    Password,
}

impl GrantType {
    pub const ALL: [GrantType; 4] = [
        Self::AuthorizationCode,
        Self::ClientCredentials,
        Self::RefreshToken,
        Self::Password,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::AuthorizationCode => "authorization_code",
            Self::ClientCredentials => "client_credentials",
            Self::RefreshToken => "refresh_token",
            Self::Password => "password",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|g| g.as_str() == raw)
    }
}

/// The grant types a client may use, stored space-separated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GrantTypes(BTreeSet<GrantType>);

impl GrantTypes {
    pub fn parse_list<S: AsRef<str>>(list: &[S]) -> Result<Self, Invalid> {
        list.iter()
            .map(|g| {
                GrantType::parse(g.as_ref())
                    .ok_or_else(|| invalid("grant_types", format!("`{}` is not supported", excerpt(g.as_ref()))))
            })
            .collect::<Result<_, _>>()
            .map(Self)
    }

    pub fn allows(&self, grant: GrantType) -> bool {
        self.0.contains(&grant)
    }

    pub fn names(&self) -> Vec<&'static str> {
        self.0.iter().map(|g| g.as_str()).collect()
    }
}

impl fmt::Display for GrantTypes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.names().join(" "))
    }
}

/// A redirect URI, matched exactly: https, http on a loopback host, or a private-use scheme
/// (`com.example.app:/callback`) for native apps; never a fragment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectUri(String);
text_newtype!(RedirectUri);

impl RedirectUri {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let url = url::Url::parse(raw).map_err(|e| invalid("redirect_uris", format!("`{}`: {e}", excerpt(raw))))?;
        if url.fragment().is_some() {
            return Err(invalid("redirect_uris", format!("`{}` has a fragment", excerpt(raw))));
        }
        let loopback = matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
        let allowed = match url.scheme() {
            "https" => true,
            "http" => loopback,
            scheme => scheme.contains('.'),
        };
        if !allowed {
            return Err(invalid(
                "redirect_uris",
                format!("`{}` must be https (http only on a loopback host)", excerpt(raw)),
            ));
        }
        Ok(Self(raw.to_owned()))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum Role {
    Admin,
    /// Seed 000: only these users create applications.
    RegistrationPlatform,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::RegistrationPlatform => "registration_platform",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [Self::Admin, Self::RegistrationPlatform]
            .into_iter()
            .find(|r| r.as_str() == raw)
    }
}

/// Roles stored space-separated; unknown words (from a newer version) are ignored.
pub fn parse_roles(stored: &str) -> BTreeSet<Role> {
    stored.split(' ').filter_map(Role::parse).collect()
}

pub fn format_roles(roles: &BTreeSet<Role>) -> String {
    roles.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(" ")
}

/// The networks an application's credentials and tokens are accepted from (seed 001's IP
/// filtering); none: any. Addresses count as single-host networks; hosts bits are dropped
/// (`10.1.2.3/8` is `10.0.0.0/8`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowedNetworks(Vec<IpNet>);

impl AllowedNetworks {
    pub const MAX: usize = 50;
    /// What an entry may look like, surrounding spaces allowed: an IPv4 address or network
    /// exactly, an IPv6 one loosely (its text forms are too many for a pattern to be exact).
    pub const ENTRY_PATTERN: &str = concat!(
        r"^[\t\n\x0b\x0c\r\x85\x20\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*(((25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(/(3[0-2]|[12]?[0-9]))?",
        r"|[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*(/(12[0-8]|1[01][0-9]|[1-9]?[0-9]))?)[\t\n\x0b\x0c\r\x85\x20\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"
    );

    /// Every entry of `list`, each refusal naming its place (`allowed_networks[1]`).
    pub fn parse_list<S: AsRef<str>>(list: &[S]) -> Result<Self, FieldErrors> {
        let mut errors = FieldErrors::default();
        if list.len() > Self::MAX {
            errors.push(invalid("allowed_networks", format!("at most {} networks", Self::MAX)));
        }
        let nets = list
            .iter()
            .enumerate()
            .filter_map(|(i, raw)| {
                let raw = raw.as_ref().trim();
                let parsed = raw
                    .parse::<IpNet>()
                    .or_else(|_| raw.parse::<IpAddr>().map(IpNet::from))
                    .map(|net| net.trunc())
                    .map_err(|_| {
                        invalid(
                            &format!("allowed_networks[{i}]"),
                            format!("`{}` is not an IP address or a CIDR network", excerpt(raw)),
                        )
                    });
                errors.keep(parsed)
            })
            .collect::<BTreeSet<_>>();
        errors.check().map(|()| Self(nets.into_iter().collect()))
    }

    /// As stored (written only by [`Self::parse_list`]).
    pub fn stored(raw: &str) -> Self {
        Self(raw.split_whitespace().filter_map(|n| n.parse().ok()).collect())
    }

    pub fn admits(&self, address: IpAddr) -> bool {
        tokens::networks_admit(&self.0, address)
    }

    pub fn to_vec(&self) -> Vec<IpNet> {
        self.0.clone()
    }

    pub fn names(&self) -> Vec<String> {
        self.0.iter().map(ToString::to_string).collect()
    }
}

impl fmt::Display for AllowedNetworks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.names().join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_quotes_a_bounded_excerpt_of_what_was_sent() {
        let sent = "\"".repeat(20_000);
        let refusals = [
            Scope::parse(&sent).unwrap_err().reason,
            RedirectUri::parse(&sent).unwrap_err().reason,
            AllowedNetworks::parse_list(&[&sent]).unwrap_err().to_string(),
        ];
        for reason in refusals {
            assert!(reason.chars().count() < 200, "{} characters", reason.len());
        }
    }

    #[test]
    fn allowed_networks_parse_every_entry_and_admit_their_hosts() {
        let nets = AllowedNetworks::parse_list(&["127.0.5.0/24", "10.1.2.3/8", "2001:db8::1"]).unwrap();
        assert_eq!(nets.to_string(), "10.0.0.0/8 127.0.5.0/24 2001:db8::1/128");
        assert_eq!(AllowedNetworks::stored(&nets.to_string()), nets);
        assert!(nets.admits("127.0.5.9".parse().unwrap()) && nets.admits("::ffff:10.9.9.9".parse().unwrap()));
        assert!(!nets.admits("127.0.6.1".parse().unwrap()));
        assert!(
            AllowedNetworks::default().admits("192.0.2.1".parse().unwrap()),
            "none: any"
        );
        let errors = AllowedNetworks::parse_list(&["10.0.0.0/8", "nope", "10.0.0.0/33"]).unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["allowed_networks[1]", "allowed_networks[2]"]);
    }

    #[test]
    fn usernames_and_emails() {
        assert!(Username::parse("alice_01").is_ok());
        assert_eq!(Username::parse("a").map_err(|e| e.field), Err("username".to_owned()));
        assert!(Username::parse("bad name").is_err());
        assert_eq!(
            Email::parse(" Alice@Example.COM ").map(|e| e.to_string()),
            Ok("alice@example.com".into())
        );
        for bad in ["no-at", "@example.com", "a@b", "a@@b.c", "a b@c.d", "a@.com"] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn scopes_parse_and_compare() {
        let granted = Scopes::parse("blog:read  profile").expect("valid");
        assert_eq!(granted.to_string(), "blog:read profile");
        assert!(Scopes::parse("profile").expect("valid").is_subset(&granted));
        assert!(!Scopes::parse("email").expect("valid").is_subset(&granted));
        assert!(Scopes::parse("bad\"scope").is_err());
    }

    #[test]
    fn redirect_uris_are_strict() {
        assert!(RedirectUri::parse("https://app.example.com/cb").is_ok());
        assert!(RedirectUri::parse("http://127.0.0.1:9000/cb").is_ok());
        assert!(RedirectUri::parse("com.example.app:/cb").is_ok());
        assert!(RedirectUri::parse("http://app.example.com/cb").is_err());
        assert!(RedirectUri::parse("https://app.example.com/cb#frag").is_err());
        assert!(RedirectUri::parse("not a url").is_err());
    }

    #[test]
    fn grant_types_round_trip() {
        let grants = GrantTypes::parse_list(&["refresh_token", "client_credentials"]).expect("valid");
        assert_eq!(grants.to_string(), "client_credentials refresh_token");
        assert!(grants.allows(GrantType::ClientCredentials) && !grants.allows(GrantType::Password));
        assert!(GrantTypes::parse_list(&["implicit"]).is_err());
    }
}
