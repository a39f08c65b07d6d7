//! Trusted-header identity (Glance's `ContextMiddleware`) and the default
//! secure-RBAC policies, with Glance's translation of refusals into 403 or 404.

use super::errors::ApiError;
use super::model::{Image, Visibility};
use http::HeaderMap;

use crate::keystone;

/// Longest inbound `X-Openstack-Request-Id` Glance accepts (`max_request_id_length`).
const MAX_REQUEST_ID_LENGTH: usize = 64;

/// Who is calling, as Glance builds its request context from trusted headers.
#[derive(Debug, Clone)]
pub(crate) struct Identity {
    /// Project of the caller, which becomes the owner of created images.
    pub project: Option<String>,
    pub user: Option<String>,
    roles: Vec<String>,
    pub request_id: String,
}

impl Identity {
    pub(crate) fn is_admin(&self) -> bool {
        self.has_role("admin")
    }

    fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }

    /// `project_id:%(x)s` as oslo.policy evaluates it: both sides compared as Python
    /// `str()`, so a missing value reads `"None"` and two missing values match.
    fn project_is(&self, value: Option<&str>) -> bool {
        self.project.as_deref().unwrap_or("None") == value.unwrap_or("None")
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Builds the identity or refuses the request, as the configured paste flavor
/// does: keystonemiddleware with a Keystone (`keystone`), or the context
/// middleware trusting identity headers. Refusals happen before a request id
/// exists, so they are sent without one.
pub(crate) fn authenticate(headers: &HeaderMap, keystone: Option<&keystone::Handle>) -> Result<Identity, ApiError> {
    match keystone {
        Some(keystone) => authenticate_token(headers, keystone),
        None => authenticate_trusted(headers),
    }
}

/// keystonemiddleware: the token must be valid now (no validation cache, as
/// with `token_cache_time = -1`); trusted identity headers are ignored.
fn authenticate_token(headers: &HeaderMap, keystone: &keystone::Handle) -> Result<Identity, ApiError> {
    let refused = || {
        ApiError::default_for(401).with_header(
            "www-authenticate",
            format!("Keystone uri=\"http://{}\"", keystone.addr()),
        )
    };
    let token = header(headers, "x-auth-token").ok_or_else(refused)?;
    let identity = keystone.validate(token).ok_or_else(refused)?;
    Ok(Identity {
        project: identity.project_id,
        user: Some(identity.user_id),
        roles: identity.roles,
        request_id: request_id(headers)?,
    })
}

fn authenticate_trusted(headers: &HeaderMap) -> Result<Identity, ApiError> {
    if header(headers, "x-identity-status") != Some("Confirmed") {
        return Err(ApiError::default_for(401));
    }
    if let Some(catalog) = headers.get("x-service-catalog") {
        let valid = catalog
            .to_str()
            .ok()
            .is_some_and(|c| serde_json::from_str::<serde_json::Value>(c).is_ok());
        if !valid {
            return Err(ApiError::with_detail(500, "Invalid service catalog json."));
        }
    }
    let request_id = request_id(headers)?;
    let project = ["x-project-id", "x-tenant-id", "x-tenant"]
        .iter()
        .find_map(|name| header(headers, name))
        .map(str::to_owned);
    let user = ["x-user-id", "x-user"]
        .iter()
        .find_map(|name| header(headers, name))
        .map(str::to_owned);
    // A WSGI server joins repeated headers with commas.
    let roles = headers
        .get_all("x-roles")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|roles| roles.split(','))
        .map(|role| role.trim().to_lowercase())
        .collect();
    Ok(Identity {
        project,
        user,
        roles,
        request_id,
    })
}

/// The inbound request id, or a new one.
fn request_id(headers: &HeaderMap) -> Result<String, ApiError> {
    Ok(
        match header(headers, "x-openstack-request-id").filter(|id| !id.is_empty()) {
            // Glance returns (instead of raising) the 431 it builds here, which ends as a 500.
            Some(id) if id.len() > MAX_REQUEST_ID_LENGTH => return Err(ApiError::internal()),
            Some(id) if id.starts_with("req-") => id.to_owned(),
            Some(id) => format!("req-{id}"),
            None => format!("req-{}", uuid::Uuid::new_v4()),
        },
    )
}

/// Policy rules of Glance's default (secure RBAC) policy file that the mock enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rule {
    AddImage,
    GetImages,
    GetImage,
    ModifyImage,
    DeleteImage,
    UploadImage,
    DownloadImage,
    Deactivate,
    Reactivate,
    PublicizeImage,
    CommunitizeImage,
    CopyImage,
    StoresInfoDetail,
    SetImageLocation,
    DeleteImageLocation,
    AddMember,
    GetMembers,
    GetMember,
    ModifyMember,
    DeleteMember,
}

impl Rule {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Rule::AddImage => "add_image",
            Rule::GetImages => "get_images",
            Rule::GetImage => "get_image",
            Rule::ModifyImage => "modify_image",
            Rule::DeleteImage => "delete_image",
            Rule::UploadImage => "upload_image",
            Rule::DownloadImage => "download_image",
            Rule::Deactivate => "deactivate",
            Rule::Reactivate => "reactivate",
            Rule::PublicizeImage => "publicize_image",
            Rule::CommunitizeImage => "communitize_image",
            Rule::CopyImage => "copy_image",
            Rule::StoresInfoDetail => "stores_info_detail",
            Rule::SetImageLocation => "set_image_location",
            Rule::DeleteImageLocation => "delete_image_location",
            Rule::AddMember => "add_member",
            Rule::GetMembers => "get_members",
            Rule::GetMember => "get_member",
            Rule::ModifyMember => "modify_member",
            Rule::DeleteMember => "delete_member",
        }
    }
}

/// The attributes policies look at (`glance.api.policy.ImageTarget`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Target<'a> {
    /// The image owner (policies call it `project_id`).
    pub owner: Option<&'a str>,
    pub visibility: Visibility,
    /// The caller's project when it looks at someone else's shared image.
    pub member_id: Option<&'a str>,
}

impl<'a> Target<'a> {
    pub(crate) fn of(image: &'a Image, who: &'a Identity) -> Target<'a> {
        let foreign_shared = image.visibility == Visibility::Shared && who.project.as_deref() != image.owner.as_deref();
        Target {
            owner: image.owner.as_deref(),
            visibility: image.visibility,
            member_id: if foreign_shared { who.project.as_deref() } else { None },
        }
    }
}

/// Evaluates one rule of the default policy file.
pub(crate) fn allowed(who: &Identity, rule: Rule, target: &Target) -> bool {
    if who.is_admin() {
        return true;
    }
    let reader = who.has_role("reader");
    let member = who.has_role("member");
    let owns = who.project_is(target.owner);
    let reachable = owns
        || who.project_is(target.member_id)
        || matches!(
            target.visibility,
            Visibility::Community | Visibility::Public | Visibility::Shared
        );
    match rule {
        Rule::GetImages => reader,
        Rule::GetImage => reader && reachable,
        Rule::DownloadImage => member && reachable,
        Rule::AddImage
        | Rule::ModifyImage
        | Rule::DeleteImage
        | Rule::UploadImage
        | Rule::Deactivate
        | Rule::Reactivate
        | Rule::CommunitizeImage
        | Rule::SetImageLocation
        | Rule::AddMember
        | Rule::DeleteMember => member && owns,
        Rule::GetMembers | Rule::GetMember => reader && (owns || who.project_is(target.member_id)),
        Rule::ModifyMember => member && who.project_is(target.member_id),
        Rule::PublicizeImage | Rule::CopyImage | Rule::StoresInfoDetail | Rule::DeleteImageLocation => false,
    }
}

/// Enforces a rule on an existing image like `ImageAPIPolicy._enforce`: a refusal is
/// a 404 when the caller may not even see the image, else a 403 naming the rule.
pub(crate) fn enforce_on_image(who: &Identity, rule: Rule, image: &Image) -> Result<(), ApiError> {
    let target = Target::of(image, who);
    if allowed(who, rule, &target) {
        return Ok(());
    }
    if rule == Rule::GetImage || !allowed(who, Rule::GetImage, &target) {
        return Err(ApiError::default_for(404));
    }
    Err(ApiError::not_authorized(rule.name()))
}

/// Enforces a rule whose refusal is always a plain 403.
pub(crate) fn enforce(who: &Identity, rule: Rule, target: &Target) -> Result<(), ApiError> {
    if allowed(who, rule, target) {
        Ok(())
    } else {
        Err(ApiError::not_authorized(rule.name()))
    }
}

/// `publicize_image` / `communitize_image`, checked when visibility is set.
pub(crate) fn enforce_visibility(who: &Identity, visibility: Visibility, target: &Target) -> Result<(), ApiError> {
    match visibility {
        Visibility::Public => enforce(who, Rule::PublicizeImage, target),
        Visibility::Community => enforce(who, Rule::CommunitizeImage, target),
        Visibility::Shared | Visibility::Private => Ok(()),
    }
}

/// The database-level visibility check (`glance.db.utils.is_image_visible`): images
/// that fail it do not exist for the caller.
pub(crate) fn can_see(who: &Identity, image: &Image) -> bool {
    if who.is_admin() || image.owner.is_none() {
        return true;
    }
    if matches!(image.visibility, Visibility::Public | Visibility::Community) {
        return true;
    }
    match who.project.as_deref() {
        Some(project) => {
            image.owner.as_deref() == Some(project)
                || (image.visibility == Visibility::Shared && image.member(project).is_some())
        }
        None => false,
    }
}
