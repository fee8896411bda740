// streams1_unfold_pagination: a paginated API as one lazy stream
//
// A `Stream` is the async version of an `Iterator`: it yields items one at a time, and each
// one may need an `.await`. `stream::unfold(state, step)` builds one from a state and an async
// step that returns the next item and the next state, or `None` to end. A cursor-paginated API
// fits exactly: the state is the cursor, each step fetches one page.
//
// Why it matters: a sync job once fetched every page of a partner API into memory before
// processing, and ran out of memory when a customer had 2 million records. A stream fetches
// the next page only when the consumer wants more items, and stops when it stops.
//
// What to do: write the step of the `unfold` in `items`: fetch the page at the cursor, yield
// its items, and carry `next_cursor` along; stop when there is no cursor.
// Run `backlings hint` if you are stuck.

use futures::stream::{self, Stream, StreamExt};
use std::cell::Cell;
use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Clone)]
pub struct Page {
    pub items: Vec<u32>,
    pub next_cursor: Option<u32>,
}

/// A fake API with cursor pagination. Each call takes 50 ms.
pub struct Api {
    pages: BTreeMap<u32, Page>,
    calls: Cell<usize>,
}

impl Api {
    pub fn new(pages: Vec<(u32, Page)>) -> Self {
        Api {
            pages: pages.into_iter().collect(),
            calls: Cell::new(0),
        }
    }

    pub async fn fetch(&self, cursor: u32) -> Page {
        self.calls.set(self.calls.get() + 1);
        tokio::time::sleep(Duration::from_millis(50)).await;
        self.pages.get(&cursor).cloned().unwrap_or(Page {
            items: Vec::new(),
            next_cursor: None,
        })
    }

    pub fn calls(&self) -> usize {
        self.calls.get()
    }
}

/// Every item of every page, in order, starting at cursor 0.
pub fn items(api: &Api) -> impl Stream<Item = u32> + '_ {
    stream::unfold(Some(0), move |cursor: Option<u32>| async move {
        // TODO: stop (return `None`) when there is no cursor. Otherwise fetch the page at the
        // cursor, and return its items as a stream (`stream::iter(page.items)`) together with
        // the next state, the page's `next_cursor`.
        let _ = (api, cursor);
        None::<(stream::Iter<std::vec::IntoIter<u32>>, Option<u32>)>
    })
    .flatten()
}

fn main() {}

// Tests: do not edit below this line.
#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::timeout;

    fn api() -> Api {
        let page = |items: &[u32], next| Page {
            items: items.to_vec(),
            next_cursor: next,
        };
        Api::new(vec![
            (0, page(&[1, 2, 3], Some(17))),
            (17, page(&[4, 5], Some(42))),
            (42, page(&[6, 7], None)),
        ])
    }

    const LIMIT: Duration = Duration::from_secs(5);

    #[tokio::test(start_paused = true)]
    async fn all_items_arrive_in_order_with_one_call_per_page() {
        let api = api();
        let all: Vec<u32> = timeout(LIMIT, items(&api).collect())
            .await
            .expect("the stream must end after the page whose next_cursor is None");
        assert_eq!(
            all,
            vec![1, 2, 3, 4, 5, 6, 7],
            "expected items 1 to 7 in order"
        );
        assert_eq!(api.calls(), 3, "3 pages: expected exactly 3 calls");
    }

    #[tokio::test(start_paused = true)]
    async fn the_stream_is_lazy() {
        let api = api();
        let stream = items(&api);
        assert_eq!(api.calls(), 0, "building the stream must not call the API");
        let first: Vec<u32> = timeout(LIMIT, stream.take(2).collect()).await.unwrap();
        assert_eq!(first, vec![1, 2], "expected the first two items");
        assert_eq!(
            api.calls(),
            1,
            "2 items are on page 1: expected exactly 1 call"
        );
    }
}
