//! HTTPS in front of a plain-http fake on loopback: a certificate for `localhost` from a
//! throw-away CA, and every connection piped to the fake. The CA's PEM file is what an operator
//! adds to the trust store (`SSL_CERT_FILE`) for an internal API with a private CA.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair,
};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

/// A CA that signs nothing but may be trusted in its place: the "wrong root" case.
pub fn unrelated_ca_pem() -> tempfile::NamedTempFile {
    let ca = certificate_authority("an unrelated CA");
    pem_file(&ca.pem())
}

pub struct TlsFront {
    /// `https://localhost:PORT`
    pub url: String,
    /// The CA that signed the front's certificate, as a PEM file.
    pub ca_pem: tempfile::NamedTempFile,
}

impl TlsFront {
    /// Starts on this test's runtime, piping to `backend_url` (`http://127.0.0.1:PORT`).
    pub async fn start(backend_url: &str) -> Self {
        let backend = backend_url
            .strip_prefix("http://")
            .expect("a plain-http backend")
            .trim_end_matches('/')
            .to_string();
        let (acceptor, listener, front) = Self::bind(Vec::new()).await;
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                let backend = backend.clone();
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(socket).await else {
                        return;
                    };
                    let Ok(mut plain) = TcpStream::connect(&backend).await else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                });
            }
        });
        front
    }

    /// An HTTP/2 server (ALPN `h2`) that resets the first `refusals` streams with
    /// `REFUSED_STREAM`, as a server shedding load or rolling over connections does, and answers
    /// every later one `200 {"items":[]}`. `streams` counts the streams it received.
    pub async fn start_h2_refusing(refusals: usize) -> (Self, Arc<AtomicUsize>) {
        let streams = Arc::new(AtomicUsize::new(0));
        let (acceptor, listener, front) = Self::bind(vec![b"h2".to_vec()]).await;
        let counter = streams.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                let counter = counter.clone();
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(socket).await else {
                        return;
                    };
                    let Ok(mut connection) = h2::server::handshake(tls).await else {
                        return;
                    };
                    while let Some(Ok((_request, mut respond))) = connection.accept().await {
                        if counter.fetch_add(1, Ordering::SeqCst) < refusals {
                            respond.send_reset(h2::Reason::REFUSED_STREAM);
                            continue;
                        }
                        let head = http::Response::builder()
                            .status(200)
                            .header("content-type", "application/json")
                            .body(())
                            .unwrap();
                        if let Ok(mut body) = respond.send_response(head, false) {
                            let _ =
                                body.send_data(bytes::Bytes::from_static(br#"{"items":[]}"#), true);
                        }
                    }
                });
            }
        });
        (front, streams)
    }

    async fn bind(alpn: Vec<Vec<u8>>) -> (TlsAcceptor, TcpListener, Self) {
        let ca = certificate_authority("tunnelgate test CA");
        let leaf_key = KeyPair::generate().unwrap();
        let mut leaf = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let leaf = leaf.signed_by(&leaf_key, &ca).unwrap();
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![leaf.der().clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
            )
            .unwrap();
        config.alpn_protocols = alpn;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let front = Self {
            url: format!("https://localhost:{port}"),
            ca_pem: pem_file(&ca.pem()),
        };
        (TlsAcceptor::from(Arc::new(config)), listener, front)
    }
}

fn certificate_authority(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

fn pem_file(pem: &str) -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(pem.as_bytes()).unwrap();
    file
}
