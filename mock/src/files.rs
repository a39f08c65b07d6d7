//! A static HTTP file server on loopback: the `copy_from` source for the
//! demo and the tests.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use tokio::net::TcpListener;

use crate::server::Server;

/// Serves fixed files by path; anything else is 404. Stops when dropped.
pub struct FileServer {
    pub addr: SocketAddr,
    _server: Server,
}

impl FileServer {
    pub async fn start(files: Vec<(String, Bytes)>) -> std::io::Result<Self> {
        let files = Arc::new(files);
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let server = Server::spawn(listener, move |request: http::Request<hyper::body::Incoming>| {
            let found = files
                .iter()
                .find(|(path, _)| path == request.uri().path())
                .map(|(_, bytes)| bytes.clone());
            async move {
                let mut response = http::Response::new(Full::new(found.clone().unwrap_or_default()));
                if found.is_none() {
                    *response.status_mut() = http::StatusCode::NOT_FOUND;
                }
                Ok::<_, Infallible>(response)
            }
        });
        Ok(FileServer { addr, _server: server })
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

/// A minimal qcow2 (version 3 header) announcing `virtual_size` bytes:
/// enough for Glance's format check of web-download data.
pub fn tiny_qcow2(virtual_size: u64) -> Bytes {
    let mut image = vec![0u8; 1024];
    image[0..4].copy_from_slice(b"QFI\xfb");
    image[4..8].copy_from_slice(&3u32.to_be_bytes());
    image[20..24].copy_from_slice(&16u32.to_be_bytes()); // cluster bits
    image[24..32].copy_from_slice(&virtual_size.to_be_bytes());
    image[96..100].copy_from_slice(&4u32.to_be_bytes()); // refcount order
    image[100..104].copy_from_slice(&104u32.to_be_bytes()); // header length
    Bytes::from(image)
}
