//! CA certificates for the standalone flavor's bundled OpenSSL.
//!
//! The bundled OpenSSL looks for CA certificates where the build machine's
//! distribution keeps them (Debian: `/usr/lib/ssl`); elsewhere HTTPS would
//! fail to verify. Unless the user chose (`SSL_CERT_FILE`/`SSL_CERT_DIR`),
//! the runtime points `SSL_CERT_FILE` at this machine's bundle: one `stat`
//! on Debian, where it is the default anyway. It is the one variable the
//! runtime sets, and the app's children inherit it.

use std::path::Path;

/// Where distributions keep their CA certificates, as one file.
const CERTIFICATE_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt", // Debian, Ubuntu, Arch, Gentoo
    "/etc/pki/tls/certs/ca-bundle.crt",   // Fedora, RHEL
    "/etc/ssl/ca-bundle.pem",             // openSUSE
    "/etc/ssl/cert.pem",                  // Alpine
];

/// The bundle to point `SSL_CERT_FILE` at, unless the user chose one.
pub fn bundle_to_use() -> Option<&'static str> {
    if ["SSL_CERT_FILE", "SSL_CERT_DIR"]
        .iter()
        .any(|name| std::env::var_os(name).is_some())
    {
        return None;
    }
    CERTIFICATE_BUNDLES
        .iter()
        .copied()
        .find(|path| Path::new(path).is_file())
}
