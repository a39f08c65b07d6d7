//! Tenant isolation, checked by the facade as well as by Glance: an image
//! the environment may not see is answered exactly as Glance answers that
//! project (404), one it may see but not change as Glance does (403), and
//! never with another project's data - even if Glance's credentials were
//! broader than the environment (an admin role, a misconfigured policy).
//! Show and list apply one rule: another project's shared image only to
//! its members, as Glance says (see [`crate::upstream::membership`]).

use futures_util::StreamExt;

use crate::error::AllianceError;
use crate::reshape::V2Image;
use crate::reshape::message::for_log;
use crate::upstream::Session;

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
/// only when the client asked for them, as in Glance's default list;
/// another project's shared image only if the environment is a member
/// ([`Listing::IfMember`], settled by [`retain_members`]).
pub fn listing(image: &V2Image<'_>, environment: &str, community_requested: bool) -> Listing {
    match access(image, environment) {
        Access::Owner => Listing::Listed,
        Access::IfMember => Listing::IfMember,
        Access::Readable if image.visibility.as_deref() == Some("public") || community_requested => Listing::Listed,
        Access::Readable | Access::Hidden => Listing::Hidden,
    }
}

/// Whether an image of a page is listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listing {
    Listed,
    Hidden,
    /// Listed if the environment is a member.
    IfMember,
}

/// Keeps, in their order, the `images` the environment may list: another
/// project's shared image only if Glance says the environment is a member,
/// as for show; the look-ups run a few at a time. A failed look-up fails
/// the whole (the list is aborted, never shortened quietly).
pub async fn retain_members(session: &Session, images: &mut Vec<V2Image<'static>>) -> Result<(), AllianceError> {
    let lookups: Vec<_> = images
        .iter()
        .enumerate()
        .filter(|(_, image)| access(image, &session.environment) == Access::IfMember)
        .map(|(index, image)| membership(session, index, &image.id))
        .collect();
    if lookups.is_empty() {
        return Ok(());
    }
    let answers: Vec<Result<(usize, bool), AllianceError>> = futures_util::stream::iter(lookups)
        .buffer_unordered(session.memberships.concurrency())
        .collect()
        .await;
    let mut listed = vec![true; images.len()];
    for answer in answers {
        let (index, member) = answer?;
        if let Some(slot) = listed.get_mut(index) {
            *slot = member;
        }
    }
    let mut listed = listed.into_iter();
    images.retain(|image| {
        let keep = listed.next().unwrap_or(true);
        if !keep {
            tracing::warn!(
                reason = "foreign_shared_image",
                image_id = %for_log(&*image.id),
                "image service listed another project's shared image to a non-member; hidden"
            );
        }
        keep
    });
    Ok(())
}

async fn membership(session: &Session, index: usize, id: &str) -> Result<(usize, bool), AllianceError> {
    Ok((index, session.memberships.is_member(session, id).await?))
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
        Access::IfMember => session.memberships.is_member(session, &image.id).await,
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
        assert_eq!(listing(&image("a", "private"), "a", false), Listing::Listed);
        assert_eq!(listing(&image("a", "shared"), "a", false), Listing::Listed);
        assert_eq!(listing(&image("b", "public"), "a", false), Listing::Listed);
        assert_eq!(listing(&image("b", "shared"), "a", false), Listing::IfMember);
        assert_eq!(listing(&image("b", "private"), "a", false), Listing::Hidden);
        assert_eq!(listing(&image("b", "community"), "a", false), Listing::Hidden);
        assert_eq!(listing(&image("b", "community"), "a", true), Listing::Listed);
    }
}
