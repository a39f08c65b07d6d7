//! The image store: records, import tasks, and listing with Glance's visibility
//! rules and keyset pagination.
//!
//! Listing walks an ordered index from the marker and stops once the page is full, so
//! a page costs O(page) (plus images skipped by filters) even with 100,000 images.

use super::auth::{Identity, can_see};
use super::errors::ApiError;
use super::listing::{Filter, ListQuery, SortDir, SortKey};
use super::model::{Image, Task, Visibility};
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::ops::Bound;

/// The value an image sorts by. Missing values sort as `''` or `0`, which is how
/// Glance's pagination query compares them.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum SortValue {
    Int(i128),
    Text(String),
}

fn sort_value(image: &Image, key: SortKey) -> SortValue {
    let text = |v: Option<&str>| SortValue::Text(v.unwrap_or_default().to_owned());
    match key {
        SortKey::Name => text(image.name.as_deref()),
        SortKey::Status => text(Some(image.status.as_str())),
        SortKey::ContainerFormat => text(image.container_format.as_deref()),
        SortKey::DiskFormat => text(image.disk_format.as_deref()),
        SortKey::Size => SortValue::Int(image.size.map_or(0, i128::from)),
        SortKey::Id => text(Some(&image.id)),
        SortKey::CreatedAt => SortValue::Int(i128::from(image.seq)),
        SortKey::UpdatedAt => SortValue::Int(image.updated_at.unix_timestamp_nanos()),
    }
}

fn compare(a: &Image, b: &Image, sort: &[(SortKey, SortDir)]) -> Ordering {
    for (key, dir) in sort {
        let ordering = sort_value(a, *key).cmp(&sort_value(b, *key));
        let ordering = if *dir == SortDir::Desc {
            ordering.reverse()
        } else {
            ordering
        };
        if ordering != Ordering::Equal {
            return ordering;
        }
    }
    Ordering::Equal
}

/// One page of a listing.
pub(crate) struct Page {
    /// The image documents, serialized.
    pub images: Vec<String>,
    pub next_marker: Option<String>,
}

/// All images and tasks of one mock server.
#[derive(Default)]
pub(crate) struct Store {
    /// Images by creation sequence number: the default (`created_at desc`) order.
    images: BTreeMap<u64, Image>,
    ids: HashMap<String, u64>,
    /// Ids of deleted images, which Glance keeps (soft delete) and never reuses.
    deleted: HashSet<String>,
    next_seq: u64,
    /// Secondary orders, built on first use and maintained afterwards.
    indexes: HashMap<SortKey, BTreeSet<(SortValue, u64)>>,
    tasks: HashMap<String, Vec<Task>>,
    /// Glance lists its reserved staging stores in `OpenStack-image-store-ids` once
    /// image data has gone through the store (compare transcripts 044 and 132).
    pub data_written: bool,
}

impl Store {
    pub(crate) fn get(&self, id: &str) -> Option<&Image> {
        self.ids.get(id).and_then(|seq| self.images.get(seq))
    }

    /// Whether `id` is taken, by a live or a deleted image.
    pub(crate) fn id_taken(&self, id: &str) -> bool {
        self.ids.contains_key(id) || self.deleted.contains(id)
    }

    /// Adds a new image, giving it the next creation sequence number.
    pub(crate) fn insert(&mut self, mut image: Image) {
        self.next_seq += 1;
        image.seq = self.next_seq;
        self.index(&image);
        self.ids.insert(image.id.clone(), image.seq);
        self.images.insert(image.seq, image);
    }

    /// Replaces a stored image by a modified copy of it (a deleted image stays deleted).
    pub(crate) fn put(&mut self, image: Image) {
        let Some(old) = self.images.remove(&image.seq) else {
            return;
        };
        self.unindex(&old);
        self.index(&image);
        self.images.insert(image.seq, image);
    }

    /// Applies `change` to a stored image; `None` if the image is gone.
    pub(crate) fn update<R>(&mut self, id: &str, change: impl FnOnce(&mut Image) -> R) -> Option<R> {
        let mut image = self.get(id)?.clone();
        let result = change(&mut image);
        self.put(image);
        Some(result)
    }

    pub(crate) fn remove(&mut self, id: &str) -> Option<Image> {
        let seq = self.ids.remove(id)?;
        let image = self.images.remove(&seq)?;
        self.deleted.insert(image.id.clone());
        self.unindex(&image);
        self.tasks.remove(id);
        Some(image)
    }

    fn index(&mut self, image: &Image) {
        for (key, index) in &mut self.indexes {
            index.insert((sort_value(image, *key), image.seq));
        }
    }

    fn unindex(&mut self, image: &Image) {
        for (key, index) in &mut self.indexes {
            index.remove(&(sort_value(image, *key), image.seq));
        }
    }

    pub(crate) fn tasks(&self, image_id: &str) -> &[Task] {
        self.tasks.get(image_id).map_or(&[], Vec::as_slice)
    }

    pub(crate) fn add_task(&mut self, task: Task) {
        self.tasks.entry(task.image_id.clone()).or_default().push(task);
    }

    pub(crate) fn task_mut(&mut self, image_id: &str, task_id: &str) -> Option<&mut Task> {
        self.tasks.get_mut(image_id)?.iter_mut().find(|t| t.id == task_id)
    }

    /// One page of `GET /v2/images` for `who`.
    pub(crate) fn list(&mut self, who: &Identity, query: &ListQuery) -> Result<Page, ApiError> {
        if let Some(error) = &query.filter_error {
            return Err(error.clone());
        }
        if query.filters.iter().any(|filter| matches!(filter, Filter::Overflow)) {
            return Err(ApiError::internal());
        }
        let marker = match &query.marker {
            None => None,
            Some(marker) => Some(self.marker_seq(who, marker)?),
        };
        // Keys after a unique one (created_at or id) never decide anything.
        let unique = query
            .sort
            .iter()
            .position(|(k, _)| matches!(k, SortKey::CreatedAt | SortKey::Id));
        let sort = &query.sort[..unique.map_or(query.sort.len(), |i| i + 1)];
        let wanted = |image: &Image| listed(who, image, query);

        let mut page: Vec<&Image> = Vec::new();
        match sort {
            [(SortKey::CreatedAt, dir)] => {
                let range = match marker {
                    None => self.images.range(..),
                    Some(seq) if *dir == SortDir::Desc => self.images.range(..seq),
                    Some(seq) => self.images.range((Bound::Excluded(seq), Bound::Unbounded)),
                };
                let candidates: Box<dyn Iterator<Item = &Image>> = match dir {
                    SortDir::Desc => Box::new(range.rev().map(|(_, image)| image)),
                    SortDir::Asc => Box::new(range.map(|(_, image)| image)),
                };
                page.extend(candidates.filter(|i| wanted(i)).take(query.limit));
            }
            [(key, dir)] | [(key, dir), (SortKey::CreatedAt, _)] if sort.len() == 1 || sort[1].1 == *dir => {
                let images = &self.images;
                let index = self
                    .indexes
                    .entry(*key)
                    .or_insert_with(|| images.values().map(|i| (sort_value(i, *key), i.seq)).collect());
                let bound = marker
                    .and_then(|seq| images.get(&seq))
                    .map(|m| (sort_value(m, *key), m.seq));
                let range = match &bound {
                    None => index.range::<(SortValue, u64), _>(..),
                    Some(b) if *dir == SortDir::Desc => index.range(..b.clone()),
                    Some(b) => index.range((Bound::Excluded(b.clone()), Bound::Unbounded)),
                };
                let candidates: Box<dyn Iterator<Item = &(SortValue, u64)>> = match dir {
                    SortDir::Desc => Box::new(range.rev()),
                    SortDir::Asc => Box::new(range),
                };
                page.extend(
                    candidates
                        .filter_map(|(_, seq)| images.get(seq))
                        .filter(|i| wanted(i))
                        .take(query.limit),
                );
            }
            _ => {
                // Mixed directions or several keys: sort everything (rare in practice).
                let mut all: Vec<&Image> = self.images.values().filter(|i| wanted(i)).collect();
                all.sort_by(|a, b| compare(a, b, sort));
                let start = match marker.and_then(|seq| self.images.get(&seq)) {
                    None => 0,
                    Some(m) => all.partition_point(|i| compare(i, m, sort) != Ordering::Greater),
                };
                page.extend(all.into_iter().skip(start).take(query.limit));
            }
        }
        let next_marker = match page.last() {
            Some(last) if query.limit > 0 && page.len() == query.limit => Some(last.id.clone()),
            _ => None,
        };
        Ok(Page {
            images: page.iter().map(|i| i.to_json_string()).collect(),
            next_marker,
        })
    }

    /// Finds the marker image the way `_image_get` does for the pagination query.
    fn marker_seq(&self, who: &Identity, marker: &str) -> Result<u64, ApiError> {
        if marker.len() > 36 {
            // `ImageNotFound()` raised without arguments keeps its unformatted template.
            return Err(ApiError::bad_request(
                "Image with the given id %(image_id)s was not found",
            ));
        }
        let image = self
            .get(marker)
            .ok_or_else(|| ApiError::bad_request(format!("No image found with ID {marker}")))?;
        if !can_see(who, image) {
            return Err(ApiError::forbidden(format!(
                "Forbidding request, image {marker} not visible"
            )));
        }
        Ok(image.seq)
    }
}

/// Whether `image` belongs in `who`'s listing (`_select_images_query` and the
/// visibility handling of `_image_get_all`).
fn listed(who: &Identity, image: &Image, query: &ListQuery) -> bool {
    let project = who.project.as_deref();
    let reachable = who.is_admin()
        || matches!(image.visibility, Visibility::Public | Visibility::Community)
        || (project.is_some() && image.owner.as_deref() == project)
        || (image.visibility == Visibility::Shared
            && image.members.iter().any(|m| match project {
                // Without a project Glance joins every membership, whatever its status.
                None => true,
                Some(p) => m.member_id == p && query.member_status.is_none_or(|s| m.status == s),
            }));
    if !reachable {
        return false;
    }
    let visible = match query.visibility {
        Some(None) => true,
        Some(Some(wanted)) => image.visibility == wanted,
        // Community images only show up when asked for, or to their owner.
        None => image.visibility != Visibility::Community || (project.is_some() && image.owner.as_deref() == project),
    };
    visible && query.filters.iter().all(|f| f.matches(image))
}
