//! Step 4 of a request (README, "How a request goes through"): the five Alliance calls, one file each. Every file
//! decides which Glance v2 calls its operation makes (the calls themselves,
//! with their status tables, are in `upstream::glance`), builds their bodies
//! as pure functions, and reshapes the answer. Sub-steps shared by several
//! calls have their own files: [`lookup`] (image references), [`isolation`]
//! (tenant checks), [`import_status`] (`killed` images), [`fields`] (the
//! writable fields in Glance's terms).

pub mod create;
pub mod delete;
pub mod fields;
pub mod import_status;
pub mod isolation;
pub mod list;
pub mod lookup;
pub mod show;
pub mod update;

use crate::body::ResponseBody;
use crate::error::AllianceError;
use crate::inbound::Input;
use crate::route::Cloud;
use crate::upstream::Session;

pub async fn apply(
    input: Input,
    cloud: &Cloud,
    session: Session,
) -> Result<http::Response<ResponseBody>, AllianceError> {
    match input {
        Input::List(query) => list::apply(session, cloud, query).await,
        Input::Show(image_ref) => show::apply(&session, cloud, image_ref).await,
        Input::Create(image) => create::apply(&session, cloud, image).await,
        Input::Update(image_ref, update) => update::apply(&session, cloud, image_ref, update).await,
        Input::Delete(image_ref) => delete::apply(&session, cloud, image_ref).await,
    }
}
