//! Interoperable image import (`POST /v2/images/{id}/import`): request checks in
//! Glance's order (transcripts 133-148, 160 and 163) and a background task that
//! really downloads `web-download` URIs, then leaves the image `active` or back in
//! `queued` with the `os_glance_*` bookkeeping of transcripts 134, 136, 152, 157
//! and 165.

use super::Shared;
use super::auth::{Rule, enforce_on_image};
use super::call::{Call, no_image, visible};
use super::data::{STORE_ID, inspect, record_location};
use super::errors::ApiError;
use super::model::{Status, Task, TaskStatus, now};
use super::reply::Reply;
use super::{MAX_IMAGE_BYTES, Options};
use crate::pyfmt;
use bytes::Bytes;
use serde_json::{Map, Value, json};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

const IMPORT_TASK: &str = "os_glance_import_task";
const IMPORTING_TO_STORES: &str = "os_glance_importing_to_stores";
const FAILED_IMPORT: &str = "os_glance_failed_import";
/// urllib's limit on followed redirects.
const MAX_REDIRECTS: usize = 10;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(300);

/// Where the bytes of an accepted import come from.
enum Source {
    Web(String),
    Staged(Bytes),
    /// A method the mock advertises but does not implement; the task fails.
    Unsupported,
}

/// `POST /v2/images/{id}/import`.
pub(crate) fn import(call: &Call, id: &str) -> Result<Reply, ApiError> {
    let body = call.json_body()?;
    // Python indexes the body and the method with `[...]`: lists, strings and nulls fail.
    let Value::Object(request) = &body else {
        return Err(ApiError::internal());
    };
    let method = request
        .get("method")
        .ok_or_else(|| ApiError::bad_request("Import request requires a 'method' field."))?;
    let Value::Object(method) = method else {
        return Err(ApiError::internal());
    };
    let name = method
        .get("name")
        .ok_or_else(|| ApiError::bad_request("Import request requires a 'name' field."))?;
    let options = &call.shared.options;
    let Some(name) = name.as_str().filter(|n| options.import_methods.iter().any(|m| m == n)) else {
        return Err(ApiError::bad_request(format!(
            "Unknown import method name '{}'.",
            pyfmt::py_str(name)
        )));
    };
    for flag in ["all_stores_must_succeed", "all_stores"] {
        if request.get(flag).is_some_and(|v| !v.is_boolean()) {
            return Err(ApiError::bad_request(format!("'{flag}' must be boolean value only")));
        }
    }

    let mut store = call.store();
    let image = visible(&store, &call.who, id, no_image(id))?;
    let status = image.status;
    let copying = name == "copy-image";
    if status == Status::Active && !copying {
        return Err(ApiError::conflict(
            "Image with status active cannot be target for import",
        ));
    }
    if status != Status::Active && copying {
        return Err(ApiError::conflict(
            "Only images with status active can be targeted for copying",
        ));
    }
    if status != Status::Queued && (name == "web-download" || name == "glance-download") {
        return Err(ApiError::conflict(format!(
            "Image needs to be in 'queued' state to use '{name}' method"
        )));
    }
    if status != Status::Uploading && name == "glance-direct" {
        return Err(ApiError::conflict(
            "Image needs to be staged before 'glance-direct' method can be used",
        ));
    }
    if image.container_format.as_deref().is_none_or(str::is_empty) {
        return Err(ApiError::conflict("'container_format' needs to be set before import"));
    }
    if image.disk_format.as_deref().is_none_or(str::is_empty) {
        return Err(ApiError::conflict("'disk_format' needs to be set before import"));
    }
    enforce_on_image(
        &call.who,
        if copying { Rule::CopyImage } else { Rule::ModifyImage },
        image,
    )?;
    if image.property(IMPORT_TASK).is_some() {
        return Err(ApiError::conflict("Image has active task"));
    }
    let stores = requested_stores(call, request)?;
    if copying {
        // The only store already holds the data of an active image.
        if request.get("all_stores") == Some(&Value::Bool(true)) {
            return Ok(Reply::empty_html(202));
        }
        return Err(ApiError::bad_request(format!(
            "Image is already present at store '{STORE_ID}'"
        )));
    }
    let source = match name {
        "web-download" => {
            let uri = method.get("uri").unwrap_or(&Value::Null);
            match uri {
                Value::String(uri) => match check_uri(uri, options) {
                    UriCheck::Allowed => Source::Web(uri.clone()),
                    UriCheck::Refused => return Err(filtering_error(uri)),
                },
                // `if not uri` refuses anything falsy; urllib fails on other types.
                other if !pyfmt::is_truthy(other) => return Err(filtering_error(&pyfmt::py_str(other))),
                _ => return Err(ApiError::internal()),
            }
        }
        "glance-direct" => Source::Staged(image.staged.clone().unwrap_or_default()),
        _ => Source::Unsupported,
    };

    let now = now();
    let task = Task {
        id: uuid::Uuid::new_v4().to_string(),
        image_id: id.to_owned(),
        owner: call.who.project.clone(),
        user_id: call.who.user.clone(),
        request_id: call.who.request_id.clone(),
        status: TaskStatus::Processing,
        input: json!({"image_id": id, "import_req": body, "backend": stores}),
        result: None,
        message: String::new(),
        created_at: now,
        updated_at: now,
        expires_at: None,
    };
    let mut image = image.clone();
    image.set_property(IMPORT_TASK, task.id.clone());
    image.set_property(IMPORTING_TO_STORES, stores.join(","));
    image.set_property(FAILED_IMPORT, "");
    image.status = Status::Importing;
    image.updated_at = now;
    let job = Job {
        image_id: id.to_owned(),
        task_id: task.id.clone(),
        source,
        no_stores: stores.is_empty(),
    };
    store.put(image);
    store.add_task(task);
    drop(store);

    let shared = Arc::clone(call.shared);
    call.shared.spawn_background(run(shared, job));
    Ok(Reply::empty_html(202))
}

fn filtering_error(uri: &str) -> ApiError {
    ApiError::bad_request(format!("URI for web-download does not pass filtering: {uri}"))
}

/// `utils.get_stores_from_request`: the only known store is `fs1`.
fn requested_stores(call: &Call, request: &Map<String, Value>) -> Result<Vec<String>, ApiError> {
    let header = call.header("x-image-meta-store");
    let stores: Vec<String> = if request.get("all_stores") == Some(&Value::Bool(true)) {
        if request.contains_key("stores") || header.is_some() {
            return Err(ApiError::bad_request(
                "All_stores parameter can't be used with x-image-meta-store header or stores parameter",
            ));
        }
        vec![STORE_ID.to_owned()]
    } else if let Some(stores) = request.get("stores") {
        if header.is_some() {
            return Err(ApiError::bad_request(
                "Stores parameter and x-image-meta-store header can't be both specified",
            ));
        }
        // Python iterates what it gets: a string by character, a dict by key.
        match stores {
            Value::Array(items) => items.iter().map(pyfmt::py_str).collect(),
            Value::String(s) => s.chars().map(String::from).collect(),
            Value::Object(map) => map.keys().cloned().collect(),
            _ => return Err(ApiError::internal()),
        }
    } else {
        vec![header.unwrap_or(STORE_ID).to_owned()]
    };
    match stores.iter().find(|s| *s != STORE_ID) {
        Some(unknown) => Err(ApiError::conflict(format!("Store for identifier {unknown} not found"))),
        None => Ok(stores),
    }
}

/// Outcome of Glance's `validate_import_uri`.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum UriCheck {
    Allowed,
    Refused,
}

/// The parts of a URI that `urllib.parse.urlsplit` would report.
struct SplitUri {
    scheme: String,
    host: Option<String>,
    port: Option<String>,
}

fn split_uri(uri: &str) -> Option<SplitUri> {
    let mut scheme = String::new();
    let mut rest = uri;
    if let Some(colon) = uri.find(':') {
        let candidate = &uri[..colon];
        let valid = candidate.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && candidate
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
        if valid {
            scheme = candidate.to_ascii_lowercase();
            rest = &uri[colon + 1..];
        }
    }
    let Some(after_slashes) = rest.strip_prefix("//") else {
        return Some(SplitUri {
            scheme,
            host: None,
            port: None,
        });
    };
    let netloc = &after_slashes[..after_slashes.find(['/', '?', '#']).unwrap_or(after_slashes.len())];
    if netloc.contains('[') != netloc.contains(']') {
        return None;
    }
    let hostinfo = netloc.rsplit_once('@').map_or(netloc, |(_, h)| h);
    let (host, port) = if let Some(bracketed) = hostinfo.strip_prefix('[') {
        let (host, after) = bracketed.split_once(']')?;
        (host, after.split_once(':').map(|(_, p)| p))
    } else {
        match hostinfo.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (hostinfo, None),
        }
    };
    let host = (!host.is_empty()).then(|| host.to_lowercase());
    Some(SplitUri {
        scheme,
        host,
        port: port.map(str::to_owned),
    })
}

/// `glance.common.utils.normalize_hostname`, without the DNS lookup Glance does for
/// names (the mock accepts any name that is not a numeric shorthand for an address).
fn normalize_host(host: &str) -> Option<String> {
    if let Ok(ip) = host.parse::<Ipv4Addr>() {
        return Some(ip.to_string());
    }
    if let Ok(ip) = host.parse::<Ipv6Addr>() {
        return Some(ip.to_string());
    }
    if host.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return None;
    }
    Some(host.to_owned())
}

/// `validate_import_uri` with the `[import_filtering_opts]` of `options`.
pub(crate) fn check_uri(uri: &str, options: &Options) -> UriCheck {
    if uri.is_empty() {
        return UriCheck::Refused;
    }
    let Some(parts) = split_uri(uri) else {
        return UriCheck::Refused;
    };
    let port = match parts.port.as_deref() {
        None | Some("") => None,
        Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => match p.parse::<u32>() {
            Ok(port) if port <= u32::from(u16::MAX) => Some(port),
            _ => return UriCheck::Refused,
        },
        Some(_) => return UriCheck::Refused,
    };
    if !["http", "https"].contains(&parts.scheme.as_str()) {
        return UriCheck::Refused;
    }
    let Some(host) = parts.host.as_deref().and_then(normalize_host) else {
        return UriCheck::Refused;
    };
    if let Some(allowed_hosts) = options.web_download_allowed_hosts.as_ref().filter(|h| !h.is_empty()) {
        if !allowed_hosts.contains(&host) {
            return UriCheck::Refused;
        }
    }
    let allowed_ports = &options.web_download_allowed_ports;
    if let Some(port) = port.filter(|p| *p != 0) {
        if !allowed_ports.is_empty() && !allowed_ports.iter().any(|p| u32::from(*p) == port) {
            return UriCheck::Refused;
        }
    }
    UriCheck::Allowed
}

/// The HTTP client of `web-download`: no proxy, Glance's redirect filtering.
pub(crate) fn http_client(options: &Options) -> Option<reqwest::Client> {
    let filter = options.clone();
    let redirects = reqwest::redirect::Policy::custom(move |attempt| {
        if attempt.previous().len() >= MAX_REDIRECTS {
            attempt.error("too many redirects")
        } else if check_uri(attempt.url().as_str(), &filter) != UriCheck::Allowed {
            attempt.error("Redirect to disallowed URL")
        } else {
            attempt.follow()
        }
    });
    reqwest::Client::builder()
        .no_proxy()
        .redirect(redirects)
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(DOWNLOAD_TIMEOUT)
        .build()
        .ok()
}

/// An accepted import, run in the background.
struct Job {
    image_id: String,
    task_id: String,
    source: Source,
    /// An empty `stores` list: no store import runs, the flow fails, and its
    /// revert fails too (the image is still `queued`), so the lock stays.
    no_stores: bool,
}

/// Fetches the data, waits out `import_delay`, then records the outcome.
async fn run(shared: Arc<Shared>, job: Job) {
    let started = Instant::now();
    let data = match &job.source {
        Source::Web(uri) => download(&shared, uri).await,
        Source::Staged(data) => Some(data.clone()),
        Source::Unsupported => None,
    };
    let delay = shared.options.import_delay.saturating_sub(started.elapsed());
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    finish(&shared, &job, data);
}

/// GETs `uri` like urllib does for Glance: any non-2xx status is a failure.
async fn download(shared: &Shared, uri: &str) -> Option<Bytes> {
    let mut response = shared.http.as_ref()?.get(uri).send().await.ok()?;
    if !response.status().is_success() {
        return None;
    }
    let announced = response.content_length();
    let mut data = Vec::new();
    while let Some(chunk) = response.chunk().await.ok()? {
        if data.len() + chunk.len() > MAX_IMAGE_BYTES {
            return None;
        }
        data.extend_from_slice(&chunk);
    }
    // Glance fails the task when fewer or more bytes arrive than announced.
    if announced.is_some_and(|n| n != 0 && n != data.len() as u64) {
        return None;
    }
    Some(Bytes::from(data))
}

/// Leaves the image active with its data, or queued with the failure recorded.
fn finish(shared: &Shared, job: &Job, data: Option<Bytes>) {
    let now = now();
    let mut copied = 0;
    let mut store = shared.store();
    let outcome = store.update(&job.image_id, |image| {
        // Only the import holding the lock may record its outcome.
        if image.property(IMPORT_TASK) != Some(job.task_id.as_str()) {
            return None;
        }
        image.set_property(IMPORTING_TO_STORES, "");
        if job.no_stores {
            image.requeue();
            return Some(TaskStatus::Failure);
        }
        image.remove_property(IMPORT_TASK);
        image.staged = None;
        image.updated_at = now;
        let checked = data.and_then(|data| inspect(image, &data).ok().map(|virtual_size| (data, virtual_size)));
        Some(match checked {
            Some((data, virtual_size)) => {
                copied = data.len();
                record_location(image, &data);
                image.size = Some(data.len() as u64);
                image.virtual_size = virtual_size;
                image.status = Status::Active;
                image.data = Some(data);
                TaskStatus::Success
            }
            None => {
                image.requeue();
                image.set_property(FAILED_IMPORT, STORE_ID);
                TaskStatus::Failure
            }
        })
    });
    let Some(Some(status)) = outcome else { return };
    if status == TaskStatus::Success {
        store.data_written = true;
    }
    if let Some(task) = store.task_mut(&job.image_id, &job.task_id) {
        task.finish(status, now);
        // The store's write callback reports progress in whole MiB.
        if status == TaskStatus::Success && copied > 0 {
            task.message = format!("Copied {} MiB", copied >> 20);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(hosts: Option<Vec<&str>>, ports: Vec<u16>) -> Options {
        Options {
            web_download_allowed_hosts: hosts.map(|h| h.into_iter().map(str::to_owned).collect()),
            web_download_allowed_ports: ports,
            ..Options::default()
        }
    }

    #[test]
    fn uri_filtering_matches_transcripts() {
        let local = options(Some(vec!["127.0.0.1"]), vec![80, 443, 8765]);
        assert_eq!(
            check_uri("http://127.0.0.1:8765/remote.qcow2", &local),
            UriCheck::Allowed
        );
        assert_eq!(
            check_uri("http://127.0.0.1:9999/remote.qcow2", &local),
            UriCheck::Refused
        );
        assert_eq!(
            check_uri("http://localhost:8765/remote.qcow2", &local),
            UriCheck::Refused
        );
        assert_eq!(check_uri("file:///etc/passwd", &local), UriCheck::Refused);
        assert_eq!(
            check_uri("http://2130706433:8765/remote.qcow2", &local),
            UriCheck::Refused
        );
        // urllib's errors on a bad port or IPv6 literal count as refusals.
        assert_eq!(check_uri("http://127.0.0.1:abc/x", &local), UriCheck::Refused);
        assert_eq!(check_uri("http://[::1/x", &local), UriCheck::Refused);
        let open = options(None, vec![80, 443]);
        assert_eq!(check_uri("https://images.example.test/x.img", &open), UriCheck::Allowed);
        assert_eq!(check_uri("http://[::1]/x", &open), UriCheck::Allowed);
        assert_eq!(check_uri("http://127.1/x", &open), UriCheck::Refused);
        assert_eq!(check_uri("http://example.test:8080/x", &open), UriCheck::Refused);
    }
}
