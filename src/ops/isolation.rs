//! Tenant isolation, checked by the facade as well as by Glance: an image
//! the environment may not see is answered exactly as Glance answers that
//! project (404), one it may see but not change as Glance does (403), and
//! never with another project's data - even if Glance's credentials were
//! broader than the environment (an admin role, a misconfigured policy).

use crate::error::AllianceError;
use crate::reshape::V2Image;
use crate::reshape::message::for_log;
use crate::upstream::{Session, glance};

/// How an image relates to the environment, from its own fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// The environment owns it.
    Owner,
    /// Public or community: anyone may see it, only the owner change it.
    Readable,
    /// Shared by another project: visible only to its members.
    IfMember,
    /// Private to another project (or of unknown visibility).
    Hidden,
}

pub fn access(image: &V2Image<'_>, environment: &str) -> Access {
    if image.owner.as_deref() == Some(environment) {
        return Access::Owner;
    }
    match image.visibility.as_deref() {
        Some("public" | "community") => Access::Readable,
        Some("shared") => Access::IfMember,
        _ => Access::Hidden,
    }
}

/// Would Glance list this image for the environment? Community images
/// only when the client asked for them, as in Glance's default list.
pub fn listable(image: &V2Image<'_>, environment: &str, community_requested: bool) -> bool {
    match access(image, environment) {
        Access::Owner | Access::IfMember => true,
        Access::Readable => image.visibility.as_deref() == Some("public") || community_requested,
        Access::Hidden => false,
    }
}

/// The write a caller is about to make, for Glance's wording.
#[derive(Debug, Clone, Copy)]
pub enum Write {
    Modify,
    Delete,
}

/// Refuses to show an image the environment may not see.
pub async fn ensure_visible(session: &Session, image: &V2Image<'_>) -> Result<(), AllianceError> {
    if is_visible(session, image).await? {
        Ok(())
    } else {
        Err(AllianceError::not_found(format!("No image found with ID {}", image.id)))
    }
}

/// Refuses a write by anyone but the owner, as Glance words it.
pub async fn ensure_writable(session: &Session, image: &V2Image<'_>, write: Write) -> Result<(), AllianceError> {
    if access(image, &session.environment) == Access::Owner {
        return Ok(());
    }
    let visible = is_visible(session, image).await?;
    Err(match (write, visible) {
        (Write::Modify, true) => AllianceError::forbidden("You are not authorized to complete modify_image action."),
        (Write::Modify, false) => AllianceError::not_found(format!("No image found with ID {}", image.id)),
        (Write::Delete, true) => AllianceError::forbidden("You are not authorized to complete delete_image action."),
        (Write::Delete, false) => AllianceError::not_found(format!("Failed to find image {} to delete", image.id)),
    })
}

async fn is_visible(session: &Session, image: &V2Image<'_>) -> Result<bool, AllianceError> {
    match access(image, &session.environment) {
        Access::Owner | Access::Readable => Ok(true),
        Access::Hidden => {
            tracing::warn!(
                reason = "foreign_private_image",
                image_id = %for_log(&*image.id),
                "image service returned another project's private image; hidden"
            );
            Ok(false)
        }
        Access::IfMember => glance::is_member(session, &image.id, &session.environment).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image<'a>(owner: &'a str, visibility: &'a str) -> V2Image<'a> {
        V2Image {
            id: "i".into(),
            owner: Some(owner.into()),
            visibility: Some(visibility.into()),
            ..V2Image::default()
        }
    }

    #[test]
    fn access_follows_owner_and_visibility() {
        assert_eq!(access(&image("a", "private"), "a"), Access::Owner);
        assert_eq!(access(&image("b", "public"), "a"), Access::Readable);
        assert_eq!(access(&image("b", "community"), "a"), Access::Readable);
        assert_eq!(access(&image("b", "shared"), "a"), Access::IfMember);
        assert_eq!(access(&image("b", "private"), "a"), Access::Hidden);
        assert_eq!(access(&V2Image::default(), "a"), Access::Hidden);
    }

    #[test]
    fn listing_hides_private_images_of_others_and_unasked_community() {
        assert!(listable(&image("a", "private"), "a", false));
        assert!(listable(&image("b", "public"), "a", false));
        assert!(listable(&image("b", "shared"), "a", false));
        assert!(!listable(&image("b", "private"), "a", false));
        assert!(!listable(&image("b", "community"), "a", false));
        assert!(listable(&image("b", "community"), "a", true));
    }
}
