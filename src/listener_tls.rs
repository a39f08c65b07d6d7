//! TLS on the Alliance listener (rustls with ring): TLS 1.2 and 1.3 only,
//! `http/1.1` the one ALPN protocol offered (a client that offers only `h2`
//! fails the handshake rather than speak HTTP/1.1 it did not ask for), the
//! certificate chain and key from PEM files, and client certificates when
//! `client_auth` asks for them.
//!
//! The files are read at start, and again at each configuration reload
//! (SIGHUP, `reload::TlsFiles`): new handshakes use what was read, open
//! connections keep what they negotiated; files that do not load refuse
//! the reload, and the previous ones stay in use.
//!
//! Client certificates: the handshake accepts any certificate whose key
//! the client proves it holds (nginx's `ssl_verify_client
//! optional_no_ca`); who it identifies - its SHA-256, and its names if it
//! chains to `client_ca_file` - is worked out after the handshake for
//! `callers` to match. An unknown certificate is thus answered with the
//! JSON 401 or 403, not a TLS alert.

use std::io;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ServerConnection, WebPkiClientVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig, SignatureScheme};
use sha2::{Digest, Sha256};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use x509_parser::extensions::GeneralName;

use crate::config::{ClientAuth, ConfigError, TlsConfig};
use crate::connection::{ClientCertificate, Peer};

/// The listener's TLS, as last read from the files.
pub struct Tls {
    current: ArcSwap<Certificates>,
}

/// What the files held, ready for handshakes.
pub struct Certificates {
    server: Arc<ServerConfig>,
    /// Checks client chains against `client_ca_file`.
    client_ca: Option<Arc<dyn ClientCertVerifier>>,
    handshake_timeout: Duration,
}

impl Tls {
    /// Reads the files; the error names the setting at fault.
    pub fn from_config(settings: &TlsConfig) -> Result<Self, ConfigError> {
        Ok(Tls {
            current: ArcSwap::from_pointee(Certificates::load(settings).map_err(ConfigError)?),
        })
    }

    /// New handshakes use `certificates` from now on; open connections keep
    /// what they negotiated.
    pub fn install(&self, certificates: Certificates) {
        self.current.store(Arc::new(certificates));
        tracing::info!("TLS certificates reloaded");
    }

    /// The handshake of one accepted connection, within
    /// `handshake_timeout_secs`, and what it proved about the client.
    pub async fn accept(&self, stream: TcpStream, address: IpAddr) -> io::Result<(TlsStream<TcpStream>, Peer)> {
        let loaded = self.current.load_full();
        let acceptor = TlsAcceptor::from(Arc::clone(&loaded.server));
        let stream = tokio::time::timeout(loaded.handshake_timeout, acceptor.accept(stream))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out"))??;
        let certificate = client_certificate(stream.get_ref().1, loaded.client_ca.as_deref());
        Ok((
            stream,
            Peer {
                address,
                certificate: certificate.map(Arc::new),
            },
        ))
    }
}

impl Certificates {
    /// Reads the files of `settings`; the error names the setting at fault.
    pub fn load(settings: &TlsConfig) -> Result<Self, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let chain = certificates(&settings.cert_chain_file).map_err(|error| format!("tls.cert_chain_file: {error}"))?;
        let key = PrivateKeyDer::from_pem_file(&settings.key_file)
            .map_err(|error| format!("tls.key_file: {}: {error}", settings.key_file.display()))?;
        let client_ca = match &settings.client_ca_file {
            Some(path) => Some(client_ca(path, &provider).map_err(|error| format!("tls.client_ca_file: {error}"))?),
            None => None,
        };
        let verifier: Arc<dyn ClientCertVerifier> = match settings.client_auth {
            ClientAuth::None => WebPkiClientVerifier::no_client_auth(),
            mode => Arc::new(AnyClientCertificate {
                mandatory: mode == ClientAuth::Require,
                hints: client_ca
                    .as_ref()
                    .map(|ca| ca.root_hint_subjects().to_vec())
                    .unwrap_or_default(),
                algorithms: provider.signature_verification_algorithms,
            }),
        };
        let mut server = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|error| format!("tls: {error}"))?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain, key)
            .map_err(|error| {
                format!(
                    "tls.key_file: {} does not go with tls.cert_chain_file: {error}",
                    settings.key_file.display()
                )
            })?;
        server.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Certificates {
            server: Arc::new(server),
            client_ca,
            handshake_timeout: Duration::from_secs(settings.handshake_timeout_secs),
        })
    }
}

/// Every certificate of a PEM file (at least one).
fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let read = |error: rustls::pki_types::pem::Error| format!("{}: {error}", path.display());
    let chain = CertificateDer::pem_file_iter(path)
        .map_err(read)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(read)?;
    if chain.is_empty() {
        return Err(format!("{}: no certificate in it", path.display()));
    }
    Ok(chain)
}

fn client_ca(path: &Path, provider: &Arc<CryptoProvider>) -> Result<Arc<dyn ClientCertVerifier>, String> {
    let mut roots = RootCertStore::empty();
    for certificate in certificates(path)? {
        roots
            .add(certificate)
            .map_err(|error| format!("{}: not a usable CA certificate: {error}", path.display()))?;
    }
    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(provider))
        .build()
        .map_err(|error| format!("{}: {error}", path.display()))
}

/// The client's certificate, if it sent one: its fingerprint, and its names
/// when it chains to the client CA (checked as rustls would have: validity,
/// client-auth usage, the chain).
fn client_certificate(
    connection: &ServerConnection,
    client_ca: Option<&dyn ClientCertVerifier>,
) -> Option<ClientCertificate> {
    let (end_entity, intermediates) = connection.peer_certificates()?.split_first()?;
    let issued_by_ca = client_ca.is_some_and(|ca| {
        ca.verify_client_cert(end_entity, intermediates, UnixTime::now())
            .is_ok()
    });
    Some(ClientCertificate {
        sha256: Sha256::digest(end_entity).into(),
        names: if issued_by_ca {
            certificate_names(end_entity)
        } else {
            Vec::new()
        },
    })
}

/// The subject CNs and SAN DNS names of a certificate.
pub fn certificate_names(der: &[u8]) -> Vec<String> {
    let Ok((_, certificate)) = x509_parser::parse_x509_certificate(der) else {
        return Vec::new();
    };
    let mut names: Vec<String> = certificate
        .subject()
        .iter_common_name()
        .filter_map(|name| name.as_str().ok())
        .map(str::to_owned)
        .collect();
    if let Ok(Some(alternative)) = certificate.subject_alternative_name() {
        names.extend(alternative.value.general_names.iter().filter_map(|name| match name {
            GeneralName::DNSName(dns) => Some((*dns).to_owned()),
            _ => None,
        }));
    }
    names
}

/// Accepts any client certificate whose key the client proves it holds;
/// what it identifies is judged after the handshake (see the module).
#[derive(Debug)]
struct AnyClientCertificate {
    mandatory: bool,
    /// The client CA's subject, so that clients pick the right certificate.
    hints: Vec<DistinguishedName>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for AnyClientCertificate {
    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.hints
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, certificate, signature, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, certificate, signature, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
