//! The CAs a client trusts to sign a server's certificate (the bus's, the cache's): PEM text,
//! usually from a mounted file (`PLATFORM_BUS__TLS_CA_FILE=/etc/platform/ca.pem`, see the
//! crate's `…_FILE` rule), or empty for the system's roots.

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use serde::Deserialize;

/// Certificates checked when the settings load, so a wrong file stops the process at start
/// with the key named, not at the first connection.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct TrustedCas(Option<String>);

impl TryFrom<String> for TrustedCas {
    type Error = String;

    fn try_from(pem: String) -> Result<Self, String> {
        if pem.trim().is_empty() {
            return Ok(Self(None));
        }
        let certificates = CertificateDer::pem_slice_iter(pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("not PEM certificates: {e}"))?;
        if certificates.is_empty() {
            return Err("holds no PEM certificate (-----BEGIN CERTIFICATE-----)".into());
        }
        Ok(Self(Some(pem)))
    }
}

impl TrustedCas {
    /// The PEM text, or `None` for the system's roots.
    pub fn pem(&self) -> Option<&str> {
        self.0.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CA: &str = "-----BEGIN CERTIFICATE-----\nMIIBhTCCASugAwIBAgIUJx1pJd0dDXsGZ4x2oCTo0TWvWHcwCgYIKoZIzj0EAwIw\n-----END CERTIFICATE-----\n";

    #[test]
    fn empty_means_the_system_roots_and_certificates_are_kept() {
        assert_eq!(TrustedCas::try_from(" \n".to_owned()), Ok(TrustedCas(None)));
        assert_eq!(
            TrustedCas::try_from(CA.to_owned()).map(|c| c.pem().map(str::len)),
            Ok(Some(CA.len()))
        );
    }

    #[test]
    fn text_without_a_certificate_is_refused() {
        for wrong in [
            "/etc/ssl/ca.pem",
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        ] {
            let refused = TrustedCas::try_from(wrong.to_owned());
            assert!(
                refused.as_ref().is_err_and(|e| e.contains("no PEM certificate")),
                "{wrong}: {refused:?}"
            );
        }
        assert!(
            TrustedCas::try_from("-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----\n".to_owned()).is_err()
        );
    }
}
