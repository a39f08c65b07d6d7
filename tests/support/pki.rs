//! Certificates made for the tests with rcgen: a CA, server certificates for
//! 127.0.0.1, client certificates it issues, and self-signed ones.

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, SanType,
};
use sha2::{Digest, Sha256};

/// A certificate and its key, in PEM.
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
    der: Vec<u8>,
}

impl Issued {
    /// Certificate and key in one PEM, as reqwest's `Identity::from_pem` takes them.
    pub fn identity(&self) -> reqwest::Identity {
        reqwest::Identity::from_pem(format!("{}{}", self.cert_pem, self.key_pem).as_bytes()).expect("identity")
    }

    /// The SHA-256 fingerprint, `AB:CD:...` as `openssl x509 -fingerprint -sha256` writes it.
    pub fn fingerprint(&self) -> String {
        Sha256::digest(&self.der)
            .iter()
            .map(|byte| format!("{byte:02X}"))
            .collect::<Vec<_>>()
            .join(":")
    }

    pub fn der(&self) -> &[u8] {
        &self.der
    }
}

pub struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

fn params(common_name: &str, dns_names: &[&str]) -> CertificateParams {
    let mut params =
        CertificateParams::new(dns_names.iter().map(|name| (*name).to_owned()).collect::<Vec<_>>()).expect("params");
    params.distinguished_name.push(DnType::CommonName, common_name);
    params
}

fn issued(cert: &rcgen::Certificate, key: &KeyPair) -> Issued {
    Issued {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        der: cert.der().to_vec(),
    }
}

impl Ca {
    pub fn new(name: &str) -> Self {
        let mut params = params(name, &[]);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        Ca {
            issuer: CertifiedIssuer::self_signed(params, KeyPair::generate().expect("key")).expect("CA"),
        }
    }

    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// An HTTPS client builder that trusts this CA alone, presenting
    /// `certificate`.
    pub fn client_builder(&self, certificate: Option<&Issued>) -> reqwest::ClientBuilder {
        let builder = reqwest::Client::builder()
            .no_proxy()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(self.pem().as_bytes()).expect("the CA's PEM"))
            .timeout(std::time::Duration::from_secs(10));
        match certificate {
            Some(certificate) => builder.identity(certificate.identity()),
            None => builder,
        }
    }

    /// A server certificate for `127.0.0.1` and `localhost`, named `common_name`.
    pub fn server(&self, common_name: &str) -> Issued {
        let mut params = params(common_name, &["localhost"]);
        params
            .subject_alt_names
            .push(SanType::IpAddress(std::net::IpAddr::from([127, 0, 0, 1])));
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate().expect("key");
        issued(&params.signed_by(&key, &self.issuer).expect("server certificate"), &key)
    }

    /// A client certificate with this CN and these SAN DNS names.
    pub fn client(&self, common_name: &str, dns_names: &[&str]) -> Issued {
        let mut params = params(common_name, dns_names);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let key = KeyPair::generate().expect("key");
        issued(&params.signed_by(&key, &self.issuer).expect("client certificate"), &key)
    }
}

/// A self-signed client certificate (no CA vouches for it).
pub fn self_signed_client(common_name: &str) -> Issued {
    let mut params = params(common_name, &[]);
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let key = KeyPair::generate().expect("key");
    issued(&params.self_signed(&key).expect("self-signed certificate"), &key)
}
