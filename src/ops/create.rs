//! `POST /images` -> `POST /v2/images` (201), then, for `copy_from`,
//! `POST /v2/images/{id}/import` with web-download (202) - or, on a cloud
//! without web-download and with the fallback enabled, the facade's own
//! transfer (see [`crate::copy_from`]).
//!
//! `copy_from` is also stored on the image as a custom property, which
//! Glance returns at the top level, so show and list can return it later
//! without any state in the facade. If the import is refused, the image
//! just created is deleted and the refusal returned.

use std::net::SocketAddr;

use http::StatusCode;
use url::Url;

use super::{fields, show};
use crate::body::ResponseBody;
use crate::copy_from::guard::{Rejection, SystemResolver};
use crate::copy_from::{fallback, methods};
use crate::error::AllianceError;
use crate::inbound::CreateImage;
use crate::metrics::CopyFromEvent;
use crate::reshape::message::for_log;
use crate::reshape::{V2Image, image_response};
use crate::route::Cloud;
use crate::upstream::Session;
use crate::upstream::glance::{self, CREATE_IMAGE, IMPORT_IMAGE};

/// How a `copy_from` will be fetched into the image.
enum Transfer {
    /// Glance's interoperable import, `web-download`.
    WebDownload,
    /// The facade's own download-and-upload, to the addresses the guard vetted.
    FacadeUpload(Vec<SocketAddr>),
}

pub async fn apply(
    session: &Session,
    cloud: &Cloud,
    image: CreateImage,
) -> Result<http::Response<ResponseBody>, AllianceError> {
    let transfer = match &image.copy_from {
        Some(url) => Some(plan_transfer(session, cloud, url).await?),
        None => None,
    };
    let body = serde_json::to_vec(&fields::create_body(&image.fields)).unwrap_or_default();
    let reply = glance::create_image(session, body).await?;
    let created: V2Image = glance::parse_json(&reply, CREATE_IMAGE.call)?;
    session.audit().image(&created.id, created.name.as_deref());
    // A client-chosen id may have been shown (404) a moment ago.
    show::forget(cloud, &session.environment, &created.id);
    if let (Some(url), Some(transfer)) = (image.copy_from, transfer) {
        // The create reply says again which imports this image may use.
        let refused_here =
            glance::import_methods_header(&reply).is_some_and(|offered| !methods::offers_web_download(&offered));
        let started = match transfer {
            Transfer::WebDownload if refused_here => Err(no_copy_from_here()),
            Transfer::WebDownload => start_import(session, &created.id, &url).await,
            Transfer::FacadeUpload(vetted) => {
                fallback::spawn(
                    session.clone(),
                    created.id.to_string(),
                    url,
                    vetted,
                    cloud.copy_from_fallback.clone(),
                );
                Ok(())
            }
        };
        if let Err(refusal) = started {
            session.metrics.copy_from(CopyFromEvent::ImportRefused);
            delete_orphan(session, &created.id).await;
            return Err(refusal);
        }
    }
    Ok(image_response(StatusCode::CREATED, created))
}

/// Before any image is made: the URL passes the SSRF guard, and the cloud
/// can fetch it (web-download), or the facade will (fallback), or the
/// create is refused.
async fn plan_transfer(session: &Session, cloud: &Cloud, url: &Url) -> Result<Transfer, AllianceError> {
    let vetted = match cloud.copy_from_guard.check(url, &SystemResolver::default()).await {
        Ok(vetted) => vetted,
        // Slow DNS is nobody's verdict on the URL.
        Err(rejection @ Rejection::ResolveTimeout(_)) => {
            return Err(AllianceError::service_unavailable(rejection.to_string()));
        }
        Err(rejection) if rejection.is_malformed() => return Err(AllianceError::bad_request(rejection.to_string())),
        // A well-formed URL to where the guard lets no one fetch: refused
        // by policy, as Glance refuses what its policy forbids.
        Err(rejection) => return Err(AllianceError::forbidden(rejection.to_string())),
    };
    let fallback = &cloud.copy_from_fallback;
    if fallback.enabled && fallback.always {
        return Ok(Transfer::FacadeUpload(vetted));
    }
    let offered = cloud.import_methods.get(session).await?;
    match offered {
        Some(offered) if !methods::offers_web_download(&offered) => {
            if fallback.enabled {
                Ok(Transfer::FacadeUpload(vetted))
            } else {
                Err(no_copy_from_here())
            }
        }
        _ => Ok(Transfer::WebDownload),
    }
}

fn no_copy_from_here() -> AllianceError {
    AllianceError::new(
        StatusCode::NOT_IMPLEMENTED,
        "this cloud does not support copy_from: its image service offers no web-download import",
    )
}

/// Asks Glance to import. When the answer is lost (a dropped connection)
/// or is a conflict, the image itself says whether an import is already
/// under way - a retried import is then a success, not an error.
async fn start_import(session: &Session, id: &str, url: &Url) -> Result<(), AllianceError> {
    let call = glance::web_download_call(id, url);
    let reply = match session.send(&IMPORT_IMAGE, &call).await {
        Ok(reply) => reply,
        Err(lost) => {
            if import_under_way(session, id).await {
                session.metrics.copy_from(CopyFromEvent::ImportStarted);
                return Ok(());
            }
            tracing::info!(
                image_id = %for_log(id),
                error = %for_log(lost.to_string()),
                "import request lost; sending it again"
            );
            session.send(&IMPORT_IMAGE, &call).await?
        }
    };
    if reply.status == StatusCode::CONFLICT && import_under_way(session, id).await {
        session.metrics.copy_from(CopyFromEvent::ImportStarted);
        return Ok(());
    }
    IMPORT_IMAGE
        .check(reply.status, &reply.body)
        .inspect(|()| session.metrics.copy_from(CopyFromEvent::ImportStarted))
        .map_err(|error| {
            if error.status.is_client_error() {
                AllianceError::new(error.status, format!("the cloud refused copy_from: {}", error.message))
            } else {
                error
            }
        })
}

/// The image is importing, or already imported.
async fn import_under_way(session: &Session, id: &str) -> bool {
    match glance::get_image(session, id).await {
        Ok(image) => {
            matches!(image.status.as_deref(), Some("importing" | "active"))
                || image
                    .os_glance_import_task
                    .as_deref()
                    .is_some_and(|task| !task.is_empty())
        }
        Err(_) => false,
    }
}

/// Best effort: the client gets the import's refusal either way; an image
/// left behind is logged for the operator.
async fn delete_orphan(session: &Session, id: &str) {
    if let Err(error) = glance::delete_image(session, id).await {
        tracing::error!(
            image_id = %for_log(id),
            error = %for_log(error.to_string()),
            "could not delete an image whose import was refused"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn create(value: Value) -> CreateImage {
        match value {
            Value::Object(map) => CreateImage::from_json(map).unwrap(),
            _ => unreachable!("test input is an object"),
        }
    }

    #[test]
    fn the_documented_request_translates() {
        let image = create(json!({
            "name": "remote_image", "disk_format": "qcow2", "container_format": "bare",
            "copy_from": "http://cloudhyd.com/openstack/images/cirros-0.3.0-i386-disk.img",
            "min_ram": 1, "min_disk": 500
        }));
        assert_eq!(
            fields::create_body(&image.fields).to_string(),
            r#"{"name":"remote_image","container_format":"bare","min_ram":1,"disk_format":"qcow2","copy_from":"http://cloudhyd.com/openstack/images/cirros-0.3.0-i386-disk.img","min_disk":500,"visibility":"private"}"#
        );
    }

    #[test]
    fn optional_fields_translate() {
        let image = create(json!({
            "id": "11111111-2222-4333-8444-555555555555", "is_public": true,
            "protected": true, "tags": ["a"], "name": null, "min_ram": "7"
        }));
        assert_eq!(
            fields::create_body(&image.fields).to_string(),
            r#"{"name":null,"tags":["a"],"min_ram":7,"visibility":"public","protected":true,"id":"11111111-2222-4333-8444-555555555555"}"#
        );
        assert_eq!(
            fields::create_body(&create(json!({})).fields).to_string(),
            r#"{"visibility":"private"}"#
        );
    }
}
