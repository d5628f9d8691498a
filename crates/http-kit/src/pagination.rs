//! List endpoints answer a page at a time: `?page=2&size=20` with a total and links, or, for
//! feeds that grow while read, an opaque cursor.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::ApiError;

pub const DEFAULT_SIZE: u32 = 20;
pub const MAX_SIZE: u32 = 100;

/// `?page=&size=` as sent; parse it with `PageRequest::try_from`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// 1-based page number (default 1).
    #[param(minimum = 1, maximum = 4294967295.0)]
    pub page: Option<u32>,
    /// Items per page, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub size: Option<u32>,
}

/// A valid page request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    page: u32,
    size: u32,
}

impl TryFrom<PageQuery> for PageRequest {
    type Error = ApiError;

    fn try_from(query: PageQuery) -> Result<Self, ApiError> {
        let page = query.page.unwrap_or(1);
        let size = query.size.unwrap_or(DEFAULT_SIZE);
        if page == 0 {
            return Err(ApiError::invalid_field("page", "must be 1 or more"));
        }
        if !(1..=MAX_SIZE).contains(&size) {
            return Err(ApiError::invalid_field(
                "size",
                format_args!("must be between 1 and {MAX_SIZE}"),
            ));
        }
        Ok(Self { page, size })
    }
}

impl PageRequest {
    pub fn page(self) -> u32 {
        self.page
    }

    pub fn size(self) -> u32 {
        self.size
    }

    pub fn offset(self) -> i64 {
        i64::from(self.page - 1) * i64::from(self.size)
    }

    pub fn limit(self) -> i64 {
        i64::from(self.size)
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PageLinks {
    #[serde(rename = "self")]
    pub self_: String,
    pub first: String,
    pub prev: Option<String>,
    pub next: Option<String>,
    pub last: String,
}

/// One page of a list whose total is known.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub page: u32,
    pub size: u32,
    pub total: u64,
    pub total_pages: u32,
    pub links: PageLinks,
}

impl<T> Page<T> {
    /// `path` and `query` are the request's; links keep its other parameters.
    pub fn new(items: Vec<T>, request: PageRequest, total: u64, path: &str, query: &str) -> Self {
        let total_pages = u32::try_from(total.div_ceil(u64::from(request.size)))
            .unwrap_or(u32::MAX)
            .max(1);
        let link = |page: u32| page_link(path, query, page, request.size);
        Self {
            items,
            page: request.page,
            size: request.size,
            total,
            total_pages,
            links: PageLinks {
                self_: link(request.page),
                first: link(1),
                prev: (request.page > 1).then(|| link((request.page - 1).min(total_pages))),
                next: (request.page < total_pages).then(|| link(request.page + 1)),
                last: link(total_pages),
            },
        }
    }
}

/// One page of a feed read by cursor.
#[derive(Debug, Serialize, ToSchema)]
pub struct CursorPage<T> {
    pub items: Vec<T>,
    /// Pass as `?cursor=` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

fn page_link(path: &str, query: &str, page: u32, size: u32) -> String {
    let mut pairs: Vec<&str> = query
        .split('&')
        .filter(|p| !p.is_empty() && !p.starts_with("page=") && !p.starts_with("size="))
        .collect();
    let paging = format!("page={page}&size={size}");
    pairs.push(&paging);
    format!("{path}?{}", pairs.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(page: Option<u32>, size: Option<u32>) -> Result<PageRequest, ApiError> {
        PageRequest::try_from(PageQuery { page, size })
    }

    #[test]
    fn defaults_and_bounds() {
        let r = request(None, None).expect("defaults");
        assert_eq!((r.page(), r.size(), r.offset()), (1, 20, 0));
        assert_eq!(request(Some(3), Some(10)).expect("valid").offset(), 20);
        assert!(request(Some(0), None).is_err());
        assert!(request(None, Some(0)).is_err());
        assert!(request(None, Some(101)).is_err());
    }

    #[test]
    fn links_keep_other_parameters() {
        let r = request(Some(2), Some(10)).expect("valid");
        let page = Page::new(vec![1, 2], r, 25, "/blog", "category=sport&page=2&size=10");
        assert_eq!(page.total_pages, 3);
        assert_eq!(page.links.self_, "/blog?category=sport&page=2&size=10");
        assert_eq!(page.links.prev.as_deref(), Some("/blog?category=sport&page=1&size=10"));
        assert_eq!(page.links.next.as_deref(), Some("/blog?category=sport&page=3&size=10"));
        assert_eq!(page.links.last, "/blog?category=sport&page=3&size=10");
        let last = Page::new(vec![1], request(Some(3), Some(10)).expect("valid"), 25, "/blog", "");
        assert_eq!(last.links.next, None);
        let empty = Page::<u8>::new(vec![], request(None, None).expect("valid"), 0, "/x", "");
        assert_eq!((empty.total_pages, empty.links.prev, empty.links.next), (1, None, None));
    }
}
