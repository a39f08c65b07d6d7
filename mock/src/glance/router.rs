//! Glance's WSGI pipeline for one request: URL prefix, CORS preflight, health check,
//! version negotiation, trusted-header authentication, then the v2 routes with their
//! 404 and 405 answers.

use super::Shared;
use super::auth::authenticate;
use super::call::Call;
use super::errors::ApiError;
use super::reply::Reply;
use super::{data, discovery, images, import, members, patch};
use crate::pyfmt;
use bytes::Bytes;
use http::request::Parts;
use http::{HeaderMap, Response};
use http_body_util::Full;
use std::sync::Arc;

/// Media-type versioning: `Accept: application/vnd.openstack.images-v2.1`.
const VERSIONED_MEDIA_TYPE: &str = "application/vnd.openstack.images-";

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The path below `prefix`, if the request is for this server at all.
fn below_prefix<'a>(path: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = path.strip_prefix(prefix)?;
    (rest.is_empty() || rest.starts_with('/')).then_some(rest)
}

/// Answers one request (its body already read).
pub(crate) fn respond(shared: &Arc<Shared>, parts: &Parts, body: &Bytes) -> Response<Full<Bytes>> {
    let headers = &parts.headers;
    let accept = header(headers, "accept");
    let prefix = shared.options.prefix.as_str();
    let Some(rest) = below_prefix(parts.uri.path(), prefix) else {
        return ApiError::default_for(404).into_reply(accept).into_response(None);
    };
    // webob's `host_url` leaves out the default port.
    let host = header(headers, "host").map_or_else(|| shared.addr.to_string(), str::to_owned);
    let host = host.strip_suffix(":80").map_or_else(|| host.clone(), str::to_owned);
    let base_url = format!("http://{host}{prefix}");

    // oslo.middleware's CORS filter answers preflights before anything else (transcript 213).
    let preflight = headers.contains_key("origin") && headers.contains_key("access-control-request-method");
    if parts.method == http::Method::OPTIONS && preflight {
        return Reply::new(200).header("content-length", "0").into_response(None);
    }
    if rest == "/healthcheck" {
        return Reply::new(200)
            .body_with_length("text/plain; charset=UTF-8", Bytes::from_static(b"OK"))
            .into_response(None);
    }

    // Version negotiation happens before authentication (transcripts 001, 002 and 211).
    let path = rest.trim_start_matches('/');
    if path.split('/').next() == Some("versions") {
        return discovery::versions(&base_url, 200).into_response(None);
    }
    let v2_path = match accept.and_then(|a| a.strip_prefix(VERSIONED_MEDIA_TYPE)) {
        Some(version) if discovery::is_known_version(version) => rest.to_owned(),
        Some(_) => return discovery::versions(&base_url, 300).into_response(None),
        None => {
            let (version, remainder) = path.split_at(path.find('/').unwrap_or(path.len()));
            if rest.is_empty() || !discovery::is_known_version(version) {
                return discovery::versions(&base_url, 300).into_response(None);
            }
            remainder.to_owned()
        }
    };

    let who = match authenticate(headers, shared.options.keystone.as_ref()) {
        Ok(who) => who,
        Err(refusal) => return refusal.into_reply(accept).into_response(None),
    };
    let request_id = who.request_id.clone();
    let call = Call {
        shared,
        method: &parts.method,
        headers,
        query: parts.uri.query(),
        body,
        who,
        host,
    };
    let reply = route(&call, &v2_path, &base_url).unwrap_or_else(|e| e.into_reply(accept));
    // No route answers HEAD, so this is always an error page, sent without its
    // body (transcript 115).
    let reply = if parts.method == http::Method::HEAD {
        reply.without_body()
    } else {
        reply
    };
    reply.into_response(Some(&request_id))
}

/// Picks the handler for the request method, or 405 with the route's `Allow` list.
fn by_method(
    call: &Call,
    allowed: &str,
    handler: impl FnOnce(&str) -> Option<Result<Reply, ApiError>>,
) -> Result<Reply, ApiError> {
    let method = call.method.as_str();
    handler(method).unwrap_or_else(|| {
        // `RejectMethodController` is a resource like any other: its JSON
        // deserializer reads a body first.
        if call.has_body() {
            call.json_body()?;
        }
        Err(ApiError::method_not_allowed(method, allowed))
    })
}

/// The v2 router; `path` is what follows `/v2`.
fn route(call: &Call, path: &str, base_url: &str) -> Result<Reply, ApiError> {
    if path.is_empty() {
        return Ok(Reply::new(302)
            .header("content-type", "text/plain; charset=utf8")
            .header("location", format!("{base_url}/v2/")));
    }
    // The WSGI server decodes the whole path before routing (an encoded `/`
    // separates segments too), each byte as one Latin-1 character (PEP 3333).
    // The routes match runs of `/` as one, but not a trailing `/`.
    let decoded = pyfmt::wsgi_path(path);
    if decoded.ends_with('/') {
        return Err(ApiError::default_for(404));
    }
    let segments: Vec<&str> = decoded.split('/').filter(|segment| !segment.is_empty()).collect();
    let get_only =
        |handler: &dyn Fn() -> Result<Reply, ApiError>| by_method(call, "GET", |m| (m == "GET").then(handler));
    match segments.as_slice() {
        ["images"] => by_method(call, "GET, POST", |m| match m {
            "GET" => Some(images::list(call)),
            "POST" => Some(images::create(call)),
            _ => None,
        }),
        ["images", id] => by_method(call, "GET, PATCH, DELETE", |m| match m {
            "GET" => Some(images::show(call, id)),
            "PATCH" => Some(patch::update(call, id)),
            "DELETE" => Some(images::delete(call, id)),
            _ => None,
        }),
        // This route has no 405 fallback in Glance: other methods find nothing.
        ["images", id, "tasks"] if call.method == http::Method::GET => images::tasks(call, id),
        ["images", id, "import"] => by_method(call, "POST", |m| (m == "POST").then(|| import::import(call, id))),
        ["images", id, "file"] => by_method(call, "GET, PUT", |m| match m {
            "GET" => Some(data::download(call, id)),
            "PUT" => Some(data::upload(call, id)),
            _ => None,
        }),
        ["images", id, "stage"] => by_method(call, "PUT", |m| (m == "PUT").then(|| data::stage(call, id))),
        ["images", id, "actions", "deactivate"] => by_method(call, "POST", |m| {
            (m == "POST").then(|| images::set_active(call, id, false))
        }),
        ["images", id, "actions", "reactivate"] => by_method(call, "POST", |m| {
            (m == "POST").then(|| images::set_active(call, id, true))
        }),
        ["images", id, "tags", tag] => by_method(call, "PUT, DELETE", |m| match m {
            "PUT" => Some(images::put_tag(call, id, tag)),
            "DELETE" => Some(images::delete_tag(call, id, tag)),
            _ => None,
        }),
        ["images", id, "members"] => by_method(call, "GET, POST", |m| match m {
            "GET" => Some(members::list(call, id)),
            "POST" => Some(members::create(call, id)),
            _ => None,
        }),
        ["images", id, "members", member] => by_method(call, "GET, PUT, DELETE", |m| match m {
            "GET" => Some(members::show(call, id, member)),
            "PUT" => Some(members::update(call, id, member)),
            "DELETE" => Some(members::delete(call, id, member)),
            _ => None,
        }),
        ["schemas", "image"] => get_only(&|| Ok(discovery::image_schema())),
        ["schemas", "images"] => get_only(&|| Ok(discovery::images_schema())),
        ["info", "import"] => get_only(&|| Ok(discovery::import_info(call))),
        ["info", "stores"] => get_only(&|| Ok(discovery::stores_info())),
        ["info", "stores", "detail"] => get_only(&|| discovery::stores_detail(call)),
        ["info", "usage"] if call.method == http::Method::GET => Ok(discovery::usage()),
        _ => Err(ApiError::default_for(404)),
    }
}
