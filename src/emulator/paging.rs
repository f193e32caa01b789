//! Paging as Qlik's list endpoints do it: a `limit` (csp-origins and api-keys: default 20,
//! at most 100; the others as their definitions say) and keyset positions, either as
//! opaque cursors (csp-origins `next`/`prev`; data-connections `page` and automations
//! `cursor`, one parameter for both directions) or as resource ids (api-keys
//! `startingAfter`/`endingBefore`). Pure.
//!
//! Keyset paging (after the last key seen, not "skip N") keeps pages stable while entries
//! are created or deleted between two calls, which is what a reconciler listing a busy
//! tenant needs. A cursor is hex-encoded JSON: opaque to clients, easy to read in a test.

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};

use super::wire::{ApiRequest, QlikError};

/// Qlik's default page size.
pub const DEFAULT_LIMIT: usize = 20;
/// Qlik's maximum page size.
pub const MAX_LIMIT: usize = 100;

/// What a list is sorted by: the sort field's value, then the id to break ties.
pub type SortKey = (String, String);

/// Where a page starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Position {
    Start,
    /// The items after this key, in list order.
    After(SortKey),
    /// The items before this key, in list order (the page ends just before it).
    Before(SortKey),
}

/// One page of a sorted list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<(SortKey, T)>,
    pub has_prev: bool,
    pub has_next: bool,
}

/// The `limit` query parameter: a number from 1 to 100 (the definitions type it as
/// `number`, so `20.0` is accepted; `2.5` is not).
pub fn limit(request: &ApiRequest) -> Result<usize, QlikError> {
    Ok(limit_up_to(request, MAX_LIMIT)?.unwrap_or(DEFAULT_LIMIT))
}

/// The `limit` query parameter, a whole number from 1 to `max`, when given: the APIs
/// differ on the default (20, 100, or everything).
pub fn limit_up_to(request: &ApiRequest, max: usize) -> Result<Option<usize>, QlikError> {
    let Some(raw) = request.query_param("limit") else {
        return Ok(None);
    };
    let value: f64 = raw
        .parse()
        .map_err(|_| QlikError::bad_request(format!("limit must be a number, got {raw:?}")))?;
    if value.fract() != 0.0 || !(1.0..=max as f64).contains(&value) {
        return Err(QlikError::bad_request(format!(
            "limit must be a whole number from 1 to {max}, got {raw}"
        )));
    }
    Ok(Some(value as usize))
}

/// The `sort` parameter: one of `fields`, optionally after `+` or `-`, else `default`.
/// Gives `(sort as given, field, descending)`.
pub fn sort<'a>(
    request: &'a ApiRequest,
    fields: &[&str],
    default: &'a str,
) -> Result<(&'a str, &'a str, bool), QlikError> {
    let sort = request.query_param("sort").unwrap_or(default);
    let field = sort.strip_prefix(['+', '-']).unwrap_or(sort);
    if !(sort.is_empty() || fields.contains(&field)) {
        return Err(QlikError::bad_request(format!(
            "sort must be one of {}, with an optional + or -",
            fields.join(", ")
        )));
    }
    Ok((sort, field, sort.starts_with('-')))
}

/// Sorts `items` by key (descending when `descending`) and cuts the page at `position`.
pub fn paginate<T>(
    mut items: Vec<(SortKey, T)>,
    descending: bool,
    position: &Position,
    limit: usize,
) -> Page<T> {
    let order = |a: &SortKey, b: &SortKey| {
        if descending { b.cmp(a) } else { a.cmp(b) }
    };
    items.sort_by(|a, b| order(&a.0, &b.0));
    let (start, end) = match position {
        Position::Start => (0, limit.min(items.len())),
        Position::After(key) => {
            let start = items.partition_point(|(k, _)| order(k, key) != Ordering::Greater);
            (start, start.saturating_add(limit).min(items.len()))
        }
        Position::Before(key) => {
            let end = items.partition_point(|(k, _)| order(k, key) == Ordering::Less);
            (end.saturating_sub(limit), end)
        }
    };
    let len = items.len();
    let items: Vec<_> = items.into_iter().skip(start).take(end - start).collect();
    Page {
        items,
        has_prev: start > 0,
        has_next: end < len,
    }
}

/// An opaque paging cursor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// The `sort` the cursor was made for.
    pub sort: String,
    pub key: SortKey,
    /// For APIs with one cursor parameter for both directions: the page before `key`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub before: bool,
}

impl Cursor {
    pub fn encode(&self) -> String {
        hex::encode(serde_json::to_vec(self).unwrap_or_default())
    }

    /// Decodes a cursor made for `sort`, or a Qlik-style 400.
    pub fn decode(raw: &str, sort: &str) -> Result<Cursor, QlikError> {
        let invalid = || QlikError::bad_request(format!("invalid paging cursor {raw:?}"));
        let bytes = hex::decode(raw).map_err(|_| invalid())?;
        let cursor: Cursor = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
        if cursor.sort != sort {
            return Err(QlikError::bad_request(
                "the paging cursor was made for another sort order",
            ));
        }
        Ok(cursor)
    }
}

/// Where a page starts, for APIs that take one cursor parameter (`param`) for both
/// directions (data-connections' `page`, automations' `cursor`).
pub fn position(request: &ApiRequest, param: &str, sort: &str) -> Result<Position, QlikError> {
    Ok(match request.query_param(param) {
        None => Position::Start,
        Some(raw) => {
            let cursor = Cursor::decode(raw, sort)?;
            if cursor.before {
                Position::Before(cursor.key)
            } else {
                Position::After(cursor.key)
            }
        }
    })
}

/// The links to the next and previous pages of `page`, for APIs with one cursor parameter:
/// the request's own query with `param` replaced.
pub fn cursor_links<T>(
    request: &ApiRequest,
    path: &str,
    param: &str,
    sort: &str,
    page: &Page<T>,
) -> (Option<String>, Option<String>) {
    let link = |key: &SortKey, before: bool| {
        let mut query: Vec<(String, String)> = request
            .query
            .iter()
            .filter(|(k, _)| k != param)
            .cloned()
            .collect();
        let cursor = Cursor {
            sort: sort.to_owned(),
            key: key.clone(),
            before,
        };
        query.push((param.to_owned(), cursor.encode()));
        request.url(path, &query)
    };
    let next = page
        .items
        .last()
        .filter(|_| page.has_next)
        .map(|(key, _)| link(key, false));
    let prev = page
        .items
        .first()
        .filter(|_| page.has_prev)
        .map(|(key, _)| link(key, true));
    (next, prev)
}

/// The `links` of the automations APIs: `next` and `prev` always, with a `null` `href`
/// when there is no such page (their `PaginationLink` makes `href` nullable).
pub fn nullable_links(next: Option<String>, prev: Option<String>) -> serde_json::Value {
    serde_json::json!({"next": {"href": next}, "prev": {"href": prev}})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(n: usize) -> Vec<(SortKey, usize)> {
        (0..n)
            .map(|i| ((format!("{i:03}"), format!("id{i:03}")), i))
            .collect()
    }

    fn values<T: Copy>(page: &Page<T>) -> Vec<T> {
        page.items.iter().map(|(_, v)| *v).collect()
    }

    fn key(i: usize) -> SortKey {
        (format!("{i:03}"), format!("id{i:03}"))
    }

    #[test]
    fn pages_follow_each_other_without_gaps_or_repeats() {
        let first = paginate(keys(5), false, &Position::Start, 2);
        assert_eq!(values(&first), vec![0, 1]);
        assert!(!first.has_prev && first.has_next);
        let second = paginate(keys(5), false, &Position::After(key(1)), 2);
        assert_eq!(values(&second), vec![2, 3]);
        assert!(second.has_prev && second.has_next);
        let last = paginate(keys(5), false, &Position::After(key(3)), 2);
        assert_eq!(values(&last), vec![4]);
        assert!(last.has_prev && !last.has_next);
        let back = paginate(keys(5), false, &Position::Before(key(2)), 2);
        assert_eq!(values(&back), vec![0, 1]);
        assert!(!back.has_prev && back.has_next);
    }

    #[test]
    fn an_unlimited_page_runs_to_the_end_from_any_position() {
        let page = paginate(keys(5), false, &Position::After(key(1)), usize::MAX);
        assert_eq!(values(&page), vec![2, 3, 4]);
        assert!(page.has_prev && !page.has_next);
    }

    #[test]
    fn a_cursor_stays_valid_when_its_item_is_deleted() {
        let mut items = keys(5);
        items.remove(2);
        let page = paginate(items, false, &Position::After(key(2)), 10);
        assert_eq!(values(&page), vec![3, 4]);
    }

    #[test]
    fn descending_lists_page_in_their_own_order() {
        let mut items = keys(5);
        items.reverse();
        let page = paginate(items.clone(), true, &Position::After(key(3)), 2);
        assert_eq!(values(&page), vec![2, 1]);
        let page = paginate(items, true, &Position::Before(key(3)), 2);
        assert_eq!(values(&page), vec![4]);
    }

    fn request(query: &[(&str, &str)]) -> ApiRequest {
        ApiRequest {
            method: hyper::Method::GET,
            path: "/".to_owned(),
            query: query
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            headers: hyper::HeaderMap::new(),
            body: hyper::body::Bytes::new(),
            base: "https://127.0.0.1".to_owned(),
        }
    }

    #[test]
    fn limit_defaults_to_20_and_accepts_whole_numbers_from_1_to_100() {
        assert_eq!(limit(&request(&[])), Ok(20));
        assert_eq!(limit(&request(&[("limit", "100")])), Ok(100));
        assert_eq!(limit(&request(&[("limit", "5.0")])), Ok(5));
        for bad in ["101", "0", "-1", "2.5", "ten", ""] {
            let err = limit(&request(&[("limit", bad)])).unwrap_err();
            assert_eq!(err.status, hyper::StatusCode::BAD_REQUEST, "{bad:?}");
        }
    }

    #[test]
    fn one_cursor_parameter_pages_both_ways() {
        let page = paginate(keys(6), false, &Position::After(key(1)), 2);
        let mut request = request(&[("limit", "2"), ("cursor", "old")]);
        let (next, prev) = cursor_links(&request, "/x", "cursor", "", &page);
        let cursor_of = |url: &str| {
            let (_, raw) = url.split_once("cursor=").unwrap();
            raw.to_owned()
        };
        let (next, prev) = (next.unwrap(), prev.unwrap());
        assert!(
            next.starts_with("https://127.0.0.1/x?limit=2&cursor="),
            "{next}"
        );
        request.query = vec![("cursor".to_owned(), cursor_of(&next))];
        assert_eq!(
            position(&request, "cursor", ""),
            Ok(Position::After(key(3)))
        );
        request.query = vec![("cursor".to_owned(), cursor_of(&prev))];
        assert_eq!(
            position(&request, "cursor", ""),
            Ok(Position::Before(key(2)))
        );
        assert!(position(&request, "cursor", "-name").is_err());
    }

    #[test]
    fn cursors_round_trip_and_reject_garbage_or_another_sort() {
        let cursor = Cursor {
            sort: "name".to_owned(),
            key: key(7),
            before: false,
        };
        let raw = cursor.encode();
        assert_eq!(Cursor::decode(&raw, "name"), Ok(cursor));
        assert!(Cursor::decode(&raw, "-name").is_err());
        assert!(Cursor::decode("zz", "name").is_err());
        assert!(Cursor::decode("7b7d", "name").is_err());
    }
}
