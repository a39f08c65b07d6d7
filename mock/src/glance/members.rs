//! Image members (`/v2/images/{id}/members`), enough to share images between
//! projects as in transcripts 183-189.

use super::auth::{Rule, Target, enforce, enforce_on_image};
use super::call::{Call, visible};
use super::errors::ApiError;
use super::model::{Image, Member, Visibility, now};
use super::reply::Reply;
use super::state::Store;
use crate::pyfmt;
use serde_json::{Value, json};

const MEMBER_STATUSES: [&str; 3] = ["pending", "accepted", "rejected"];

fn image_not_found(id: &str) -> impl FnOnce() -> ApiError + '_ {
    move || ApiError::not_found(format!("Image {id} not found."))
}

/// The image, if shared; `refusal` explains otherwise.
fn shared_image<'s>(
    store: &'s Store,
    call: &Call,
    id: &str,
    refusal: impl FnOnce() -> ApiError,
) -> Result<&'s Image, ApiError> {
    let image = visible(store, &call.who, id, image_not_found(id))?;
    if image.visibility != Visibility::Shared {
        return Err(refusal());
    }
    Ok(image)
}

/// Membership rows the caller may see: all of them for the owner or an admin,
/// otherwise only the caller's own.
fn may_see_member(call: &Call, image: &Image, member: &Member) -> bool {
    call.who.is_admin()
        || (call.who.project.is_some() && call.who.project == image.owner)
        || call.who.project.as_deref() == Some(member.member_id.as_str())
}

/// `_lookup_member`: policy checks, then the member among the visible rows.
fn lookup<'i>(call: &Call, image: &'i Image, member_id: &str) -> Result<&'i Member, ApiError> {
    let allowed = enforce_on_image(&call.who, Rule::GetImage, image)
        .and_then(|()| enforce(&call.who, Rule::GetMember, &Target::of(image, &call.who)));
    if allowed.is_err() {
        return Err(ApiError::forbidden(format!(
            "You are not authorized to lookup the members of the image {}.",
            image.id
        )));
    }
    image
        .members
        .iter()
        .find(|m| m.member_id == member_id && may_see_member(call, image, m))
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "{member_id} not found in the member list of the image {}.",
                image.id
            ))
        })
}

fn member_reply(member: &Member, image_id: &str) -> Reply {
    Reply::json(200, pyfmt::dumps(&member.to_json(image_id), false))
}

/// `POST /v2/images/{id}/members`.
pub(crate) fn create(call: &Call, id: &str) -> Result<Reply, ApiError> {
    let member_id = match call.json_body()? {
        Value::Object(body) => match body.get("member") {
            None => return Err(ApiError::bad_request("Member to be added not specified")),
            Some(member) if !pyfmt::is_truthy(member) => {
                return Err(ApiError::bad_request("Member can't be empty"));
            }
            Some(member) => pyfmt::py_str(member),
        },
        _ => {
            return Err(ApiError::bad_request(
                "Expected a member in the form: {\"member\": \"image_id\"}",
            ));
        }
    };
    let mut store = call.store();
    let refusal = || ApiError::forbidden(format!("Not allowed to create members for image {id}."));
    let image = shared_image(&store, call, id, refusal)?;
    enforce_on_image(&call.who, Rule::GetImage, image)?;
    enforce(&call.who, Rule::AddMember, &Target::of(image, &call.who))?;
    if image.member(&member_id).is_some() {
        return Err(ApiError::conflict(format!(
            "Member {member_id} is duplicated for image {id}"
        )));
    }
    let now = now();
    let member = Member {
        member_id,
        status: "pending",
        created_at: now,
        updated_at: now,
    };
    let reply = member_reply(&member, id);
    let mut image = image.clone();
    image.members.push(member);
    store.put(image);
    Ok(reply)
}

/// `GET /v2/images/{id}/members`.
pub(crate) fn list(call: &Call, id: &str) -> Result<Reply, ApiError> {
    let store = call.store();
    let refusal = || {
        ApiError::forbidden(format!(
            "Not allowed to list members for image {id}: Only shared images have members."
        ))
    };
    let image = shared_image(&store, call, id, refusal)?;
    enforce_on_image(&call.who, Rule::GetImage, image)?;
    enforce(&call.who, Rule::GetMembers, &Target::of(image, &call.who))?;
    let members: Vec<Value> = image
        .members
        .iter()
        .filter(|m| may_see_member(call, image, m))
        .map(|m| m.to_json(id))
        .collect();
    let body = json!({"members": members, "schema": "/v2/schemas/members"});
    Ok(Reply::json(200, pyfmt::dumps(&body, false)))
}

/// `GET /v2/images/{id}/members/{member}`: refusals are all 404 here.
pub(crate) fn show(call: &Call, id: &str, member_id: &str) -> Result<Reply, ApiError> {
    let store = call.store();
    let refusal = || ApiError::not_found("Only shared images have members.");
    let image = shared_image(&store, call, id, refusal)?;
    let member = lookup(call, image, member_id).map_err(|e| match e.status() {
        403 => ApiError::not_found(format!(
            "You are not authorized to lookup the members of the image {id}."
        )),
        _ => e,
    })?;
    Ok(member_reply(member, id))
}

/// `PUT /v2/images/{id}/members/{member}`: the member accepts or rejects.
pub(crate) fn update(call: &Call, id: &str, member_id: &str) -> Result<Reply, ApiError> {
    let status = match call.json_body()? {
        Value::Object(body) => body
            .get("status")
            .cloned()
            .ok_or_else(|| ApiError::bad_request("Status not specified"))?,
        _ => {
            return Err(ApiError::bad_request(
                "Expected a status in the form: {\"status\": \"status\"}",
            ));
        }
    };
    let mut store = call.store();
    let refusal = || ApiError::forbidden(format!("Not allowed to update members for image {id}."));
    let image = shared_image(&store, call, id, refusal)?;
    lookup(call, image, member_id)?;
    enforce(&call.who, Rule::ModifyMember, &Target::of(image, &call.who))?;
    let Some(status) = status
        .as_str()
        .and_then(|s| MEMBER_STATUSES.iter().copied().find(|m| *m == s))
    else {
        return Err(ApiError::bad_request(
            "Incorrect request: Status must be \"pending\", \"accepted\" or \"rejected\".",
        ));
    };
    let mut image = image.clone();
    let Some(member) = image.members.iter_mut().find(|m| m.member_id == member_id) else {
        return Err(ApiError::internal());
    };
    member.status = status;
    member.updated_at = now();
    let reply = member_reply(member, id);
    store.put(image);
    Ok(reply)
}

/// `DELETE /v2/images/{id}/members/{member}`.
pub(crate) fn delete(call: &Call, id: &str, member_id: &str) -> Result<Reply, ApiError> {
    let mut store = call.store();
    let refusal = || ApiError::forbidden(format!("Not allowed to delete members for image {id}."));
    let image = shared_image(&store, call, id, refusal)?;
    lookup(call, image, member_id)?;
    enforce(&call.who, Rule::DeleteMember, &Target::of(image, &call.who))?;
    let mut image = image.clone();
    image.members.retain(|m| m.member_id != member_id);
    store.put(image);
    Ok(Reply::empty_html(204))
}
