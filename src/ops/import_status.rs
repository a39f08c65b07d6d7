//! Failure reporting for `copy_from`. A failed web-download puts the image
//! back to `queued` and, on a single-store Glance, leaves no mark on the
//! image; the only reliable signal is the image's import tasks
//! (`GET /v2/images/{id}/tasks`). An image with a `copy_from`, queued, with
//! no import running and whose latest import task failed is reported
//! `killed`, as Glance v1 did. Only such images cost an extra call.

use futures_util::StreamExt;

use crate::metrics::CopyFromEvent;
use crate::reshape::V2Image;
use crate::reshape::message::for_log;
use crate::upstream::Session;
use crate::upstream::glance::{self, Task};

/// Task look-ups run at once for one page.
const CONCURRENT_LOOKUPS: usize = 8;

/// The status to report for an image whose latest import task is `latest`.
pub fn reported_status(latest: Option<&Task>) -> Option<&'static str> {
    latest.filter(|task| task.status == "failure").map(|_| "killed")
}

/// The most recent task; Glance's own order is not guaranteed.
pub fn latest(tasks: &[Task]) -> Option<&Task> {
    tasks.iter().max_by(|a, b| a.created_at.cmp(&b.created_at))
}

/// Marks `killed` the images whose import failed: at once when the facade's
/// own transfer recorded its failure on the image, otherwise from the
/// image's tasks. A look-up that fails leaves Glance's status as it is: the
/// report is an addition, never a reason to fail the request.
pub async fn report_failed_imports(session: &Session, images: &mut [V2Image<'_>]) {
    for image in images.iter_mut() {
        if image.import_outcome_unknown() && image.alliance_copy_from_error.is_some() {
            image.status = Some("killed".into());
            session.metrics.copy_from(CopyFromEvent::ReportedKilled);
            session.audit().killed(&image.id, image.name.as_deref());
        }
    }
    let lookups: Vec<_> = images
        .iter()
        .enumerate()
        .filter(|(_, image)| image.import_outcome_unknown())
        .map(|(index, image)| lookup(session, index, &image.id))
        .collect();
    if lookups.is_empty() {
        return;
    }
    let outcomes: Vec<(usize, bool)> = futures_util::stream::iter(lookups)
        .buffer_unordered(CONCURRENT_LOOKUPS)
        .collect()
        .await;
    for (index, failed) in outcomes {
        if failed && let Some(image) = images.get_mut(index) {
            image.status = Some("killed".into());
            session.metrics.copy_from(CopyFromEvent::ReportedKilled);
            session.audit().killed(&image.id, image.name.as_deref());
        }
    }
}

async fn lookup(session: &Session, index: usize, id: &str) -> (usize, bool) {
    let failed = match glance::image_tasks(session, id).await {
        Ok(tasks) => reported_status(latest(&tasks)).is_some(),
        Err(error) => {
            tracing::warn!(error = %for_log(error.to_string()), "import task look-up failed");
            false
        }
    };
    (index, failed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reshape::Text;

    fn task(status: &str, created_at: &str) -> Task {
        Task {
            status: status.into(),
            created_at: created_at.into(),
        }
    }

    #[test]
    fn the_latest_failed_task_means_killed() {
        let tasks = [
            task("success", "2026-11-26T23:04:52.1"),
            task("failure", "2026-11-26T23:05:00.0"),
        ];
        assert_eq!(reported_status(latest(&tasks)), Some("killed"));
        let retried = [
            task("failure", "2026-11-26T23:04:52.1"),
            task("processing", "2026-11-26T23:05:00.0"),
        ];
        assert_eq!(reported_status(latest(&retried)), None);
        assert_eq!(reported_status(latest(&[])), None);
    }

    #[test]
    fn only_queued_copy_from_images_without_a_running_import_are_looked_up() {
        let image = |status: &'static str, copy_from: Option<&'static str>, task: Option<&'static str>| V2Image {
            id: "i".into(),
            status: Some(status.into()),
            copy_from: copy_from.map(Text::from),
            os_glance_import_task: task.map(Text::from),
            ..V2Image::default()
        };
        assert!(image("queued", Some("http://x/y"), None).import_outcome_unknown());
        assert!(image("queued", Some("http://x/y"), Some("")).import_outcome_unknown());
        assert!(!image("queued", Some("http://x/y"), Some("t1")).import_outcome_unknown());
        assert!(!image("importing", Some("http://x/y"), None).import_outcome_unknown());
        assert!(!image("active", Some("http://x/y"), None).import_outcome_unknown());
        assert!(!image("queued", None, None).import_outcome_unknown());
    }
}
