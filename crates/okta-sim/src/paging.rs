//! Okta's cursor pagination: an opaque `after` cursor and `Link` header lines, `self`
//! first and `next` only when another page exists.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use url::Url;

const CURSOR_VERSION: &str = "v1:";

pub fn encode_cursor(last_id: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{CURSOR_VERSION}{last_id}"))
}

/// The last id of the previous page, or `None` when the cursor was not made here.
pub fn decode_cursor(cursor: &str) -> Option<String> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    text.strip_prefix(CURSOR_VERSION)
        .filter(|id| !id.is_empty())
        .map(str::to_string)
}

/// The page's `Link` header values: the request's own URL as `self`, then, when more
/// items follow, the same query with `after` set to the cursor as `next`.
pub fn link_headers(request_url: &Url, next_cursor: Option<&str>) -> Vec<String> {
    let mut links = vec![format!("<{request_url}>; rel=\"self\"")];
    if let Some(cursor) = next_cursor {
        let mut next = request_url.clone();
        let kept: Vec<(String, String)> = request_url
            .query_pairs()
            .filter(|(k, _)| k != "after")
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        next.query_pairs_mut()
            .clear()
            .extend_pairs(kept)
            .append_pair("after", cursor);
        links.push(format!("<{next}>; rel=\"next\""));
    }
    links
}

/// A page of `items` (sorted by id) after the cursor's id.
pub fn page<T>(
    items: Vec<T>,
    id: impl Fn(&T) -> &str,
    after: Option<&str>,
    limit: usize,
) -> (Vec<T>, Option<String>) {
    let mut rest: Vec<T> = match after {
        Some(after) => items.into_iter().filter(|item| id(item) > after).collect(),
        None => items,
    };
    let more = rest.len() > limit;
    rest.truncate(limit);
    let next = if more {
        rest.last().map(|item| encode_cursor(id(item)))
    } else {
        None
    };
    (rest, next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_foreign_ones_are_refused() {
        assert_eq!(
            decode_cursor(&encode_cursor("00gabc")),
            Some("00gabc".into())
        );
        assert_eq!(decode_cursor("00gabc"), None);
        assert_eq!(decode_cursor("!!!"), None);
        assert_eq!(decode_cursor(&URL_SAFE_NO_PAD.encode("v1:")), None);
    }

    #[test]
    fn pages_walk_all_items_once() {
        let items: Vec<String> = (0..7).map(|i| format!("00g{i}")).collect();
        let mut seen = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let (page, next) = page(items.clone(), |s| s.as_str(), after.as_deref(), 3);
            seen.extend(page);
            match next {
                Some(cursor) => after = decode_cursor(&cursor),
                None => break,
            }
        }
        assert_eq!(seen, items);
    }

    #[test]
    fn next_link_keeps_the_query_and_replaces_after() {
        let url = Url::parse(
            "https://okta.test/api/v1/groups?search=type+eq+%22OKTA_GROUP%22&limit=2&after=old",
        )
        .expect("url");
        let links = link_headers(&url, Some("CUR"));
        assert_eq!(links.len(), 2);
        assert!(links[0].ends_with("rel=\"self\""));
        assert!(links[1].contains("search=type+eq+%22OKTA_GROUP%22"));
        assert!(links[1].contains("limit=2"));
        assert!(links[1].contains("after=CUR"));
        assert!(!links[1].contains("after=old"));
        assert_eq!(link_headers(&url, None).len(), 1);
    }
}
