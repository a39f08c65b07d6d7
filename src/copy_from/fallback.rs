//! The facade-side `copy_from`, for clouds without web-download: the facade
//! downloads the URL - connecting only to the addresses the guard vetted,
//! following no redirect, through no proxy - and streams it into
//! `PUT /v2/images/{id}/file`, in the background. Memory stays at a few
//! chunks whatever the image size; a size cap and a time limit bound the
//! transfer. A failure is written on the image as the custom property
//! `alliance_copy_from_error`, so that show and list report it (`killed`)
//! with no state in the facade.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use url::Url;

use crate::config::FallbackConfig;
use crate::metrics::CopyFromEvent;
use crate::reshape::message::for_log;
use crate::upstream::{Session, glance};

/// The custom property that records a failed facade-side transfer.
pub const ERROR_PROPERTY: &str = "alliance_copy_from_error";

/// Starts the transfer and returns at once.
pub fn spawn(session: Session, image_id: String, url: Url, vetted: Vec<SocketAddr>, config: FallbackConfig) {
    session.metrics.copy_from(CopyFromEvent::FallbackStarted);
    tokio::spawn(async move {
        match transfer(&session, &image_id, &url, &vetted, &config).await {
            Ok(bytes) => {
                session.metrics.copy_from(CopyFromEvent::FallbackSucceeded);
                tracing::info!(
                    request_id = %session.request_id,
                    image_id = %for_log(&image_id),
                    bytes,
                    "copy_from uploaded by the facade"
                )
            }
            Err(reason) => {
                session.metrics.copy_from(CopyFromEvent::FallbackFailed);
                tracing::warn!(
                    request_id = %session.request_id,
                    image_id = %for_log(&image_id),
                    reason = "copy_from_upload_failed",
                    error = %for_log(&reason),
                    "copy_from upload failed"
                );
                record_failure(&session, &image_id, &reason).await;
            }
        }
    });
}

/// Downloads `url` into the image; the number of bytes moved, or why not.
async fn transfer(
    session: &Session,
    image_id: &str,
    url: &Url,
    vetted: &[SocketAddr],
    config: &FallbackConfig,
) -> Result<u64, String> {
    let timeout = Duration::from_secs(config.timeout_secs);
    let mut client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .connect_timeout(Duration::from_secs(10))
        .timeout(timeout);
    if let Some(host) = url.host_str() {
        // Connect where the guard looked, not where DNS says now.
        client = client.resolve_to_addrs(host, vetted);
    }
    let client = client
        .build()
        .map_err(|error| format!("cannot build the download client: {error}"))?;
    let response = client
        .get(url.clone())
        .send()
        .await
        .map_err(|error| format!("the source could not be fetched: {}", without_url(&error)))?;
    if !response.status().is_success() {
        return Err(format!("the source answered {}", response.status()));
    }
    if response
        .content_length()
        .is_some_and(|length| length > config.max_bytes)
    {
        return Err(format!("the source is larger than {} bytes", config.max_bytes));
    }

    let moved = Arc::new(Mutex::new(Ok::<u64, String>(0)));
    let counter = Arc::clone(&moved);
    let max_bytes = config.max_bytes;
    let metrics = session.metrics.clone();
    let body = response.bytes_stream().map(move |chunk| {
        let mut state = counter.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let chunk = chunk.map_err(|error| {
            *state = Err(format!("the source failed mid-way: {}", without_url(&error)));
            std::io::Error::other("source failed")
        })?;
        metrics.fallback_bytes(chunk.len() as u64);
        if let Ok(total) = state.as_mut() {
            *total += chunk.len() as u64;
            if *total > max_bytes {
                *state = Err(format!("the source is larger than {max_bytes} bytes"));
                return Err(std::io::Error::other("size cap"));
            }
        }
        Ok(chunk)
    });
    let uploaded = glance::upload_data(session, image_id, reqwest::Body::wrap_stream(body), timeout).await;
    let outcome = moved
        .lock()
        .map(|state| state.clone())
        .unwrap_or_else(|_| Err("transfer state lost".into()));
    let bytes = outcome?;
    uploaded.map_err(|error| {
        format!(
            "the image service did not take the data ({}): {}",
            error.status, error.message
        )
    })?;
    Ok(bytes)
}

/// reqwest errors name the URL, which may carry a query the client considers private.
fn without_url(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    if let Some(url) = error.url() {
        text = text.replace(url.as_str(), "<url>");
    }
    text
}

async fn record_failure(session: &Session, image_id: &str, reason: &str) {
    if let Err(error) = glance::add_property(session, image_id, ERROR_PROPERTY, reason).await {
        tracing::error!(
            image_id = %for_log(image_id),
            error = %for_log(error.to_string()),
            "could not record a failed copy_from"
        );
    }
}
