// streams1_unfold_pagination: a paginated API as one lazy stream
//
// A `Stream` is the async version of an `Iterator`: it yields items one at a time, and each
// one may need an `.await`. `stream::unfold(state, step)` builds one from a state and an async
// step that returns this step's output and the next state, or `None` to end. A cursor-paginated
// API fits exactly: the state is the cursor of the next page, each step fetches one page.
//
// Why it matters: a sync job once fetched every page of a partner API into memory before
// processing, and ran out of memory when a customer had 2 million records. A stream fetches
// the next page only when the consumer wants more items, and stops when it stops.
//
// Two rules of real APIs: only the cursor says whether more pages exist, and a page can fail.
// A failed fetch is yielded as an `Err` item and ends the stream; the error carries the cursor,
// so the caller can retry from there instead of from the start.
//
// Production caveat: Slack's pagination guide warns that a page can hold fewer results than
// the limit even when more remain, and tells clients to stop only when `next_cursor` is empty,
// never because a page came back short. An empty page with a cursor is the extreme case.
//
// What to do: write `step`, one step of the `unfold` in `items`. Run `backlings hint` if you
// are stuck.

use futures::stream::{self, Stream, StreamExt};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub items: Vec<u32>,
    /// The cursor of the next page; `None` on the last page.
    pub next_cursor: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchError {
    /// The cursor whose page failed: retry from here.
    pub cursor: u32,
    pub status: u16,
}

/// The seam to the paginated API: production calls it over HTTP, the tests use a fake.
pub trait PageApi {
    fn fetch(&self, cursor: u32) -> impl Future<Output = Result<Page, FetchError>>;
}

/// The state of the stream: the cursor of the next page to fetch, or `None` when done.
type State = Option<u32>;

/// One step of the stream. Given the state, fetch one page and return its items (each as
/// `Ok`, or the fetch error as one `Err`) together with the next state; return `None` when
/// there is nothing more to fetch.
async fn step<A: PageApi>(api: &A, state: State) -> Option<(Vec<Result<u32, FetchError>>, State)> {
    // No cursor: the last page was already fetched (or a fetch failed), so end the stream.
    let cursor = state?;
    match api.fetch(cursor).await {
        // Only the cursor decides whether there is more; an empty page does not end anything.
        Ok(page) => Some((page.items.into_iter().map(Ok).collect(), page.next_cursor)),
        Err(e) => Some((vec![Err(e)], None)),
    }
}

/// Every item of every page, in order, starting at cursor 0.
pub fn items<A: PageApi>(api: &A) -> impl Stream<Item = Result<u32, FetchError>> + '_ {
    stream::unfold(Some(0), move |state| step(api, state)).flat_map(stream::iter)
}

fn main() {}

// Tests: do not edit below this line.
#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::collections::BTreeMap;
    use std::time::Duration;
    use tokio::time::timeout;

    const LIMIT: Duration = Duration::from_secs(60);

    /// A fake API: a page (or an error) per cursor; it records every cursor it is asked for.
    struct Fake {
        pages: BTreeMap<u32, Result<Page, FetchError>>,
        fetched: RefCell<Vec<u32>>,
    }

    impl PageApi for Fake {
        async fn fetch(&self, cursor: u32) -> Result<Page, FetchError> {
            self.fetched.borrow_mut().push(cursor);
            tokio::time::sleep(Duration::from_millis(50)).await;
            self.pages.get(&cursor).cloned().unwrap_or_else(|| {
                panic!("fetched cursor {cursor}, which no page pointed to: follow next_cursor")
            })
        }
    }

    fn page(items: &[u32], next_cursor: Option<u32>) -> Result<Page, FetchError> {
        Ok(Page {
            items: items.to_vec(),
            next_cursor,
        })
    }

    fn fake(pages: Vec<(u32, Result<Page, FetchError>)>) -> Fake {
        Fake {
            pages: pages.into_iter().collect(),
            fetched: RefCell::new(Vec::new()),
        }
    }

    /// Two data sets: (pages, all items, the cursors fetched in order).
    fn data_sets() -> Vec<(Fake, Vec<u32>, Vec<u32>)> {
        vec![
            (
                fake(vec![
                    (0, page(&[1, 2, 3], Some(17))),
                    (17, page(&[4, 5], Some(42))),
                    (42, page(&[6, 7], None)),
                ]),
                vec![1, 2, 3, 4, 5, 6, 7],
                vec![0, 17, 42],
            ),
            (
                fake(vec![
                    (0, page(&[90], Some(8))),
                    (8, page(&[80, 70, 60, 50], Some(3))),
                    (3, page(&[40], Some(99))),
                    (99, page(&[30, 20], None)),
                ]),
                vec![90, 80, 70, 60, 50, 40, 30, 20],
                vec![0, 8, 3, 99],
            ),
        ]
    }

    async fn collect(api: &Fake) -> Vec<Result<u32, FetchError>> {
        // At most 100 items, so that a stream that never ends fails instead of hanging.
        timeout(LIMIT, items(api).take(100).collect())
            .await
            .expect("the stream must end after the page whose next_cursor is None")
    }

    #[tokio::test(start_paused = true)]
    async fn all_items_arrive_in_order_with_one_fetch_per_page() {
        for (api, want, cursors) in data_sets() {
            let got = collect(&api).await;
            let want: Vec<_> = want.into_iter().map(Ok).collect();
            assert_eq!(got, want, "expected every item of every page, in order");
            assert_eq!(
                *api.fetched.borrow(),
                cursors,
                "expected one fetch per page, following next_cursor"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn an_empty_page_with_a_next_cursor_does_not_end_the_stream() {
        let cases = [
            (
                vec![
                    (0, page(&[1, 2], Some(5))),
                    (5, page(&[], Some(6))),
                    (6, page(&[3], None)),
                ],
                vec![1, 2, 3],
                vec![0, 5, 6],
            ),
            (
                vec![
                    (0, page(&[], Some(4))),
                    (4, page(&[], Some(2))),
                    (2, page(&[7, 8], Some(9))),
                    (9, page(&[], None)),
                ],
                vec![7, 8],
                vec![0, 4, 2, 9],
            ),
        ];
        for (pages, want, cursors) in cases {
            let api = fake(pages);
            let got = collect(&api).await;
            let want: Vec<_> = want.into_iter().map(Ok).collect();
            assert_eq!(
                got, want,
                "an empty page with a next_cursor means 'nothing here, more later': expected \
                 the items of the later pages too"
            );
            assert_eq!(*api.fetched.borrow(), cursors, "expected these fetches");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_fetch_is_yielded_and_ends_the_stream() {
        let error = |cursor, status| Err(FetchError { cursor, status });
        let cases = [
            (
                vec![
                    (0, page(&[1, 2], Some(5))),
                    (5, error(5, 503)),
                    (6, page(&[3], None)),
                ],
                vec![
                    Ok(1),
                    Ok(2),
                    Err(FetchError {
                        cursor: 5,
                        status: 503,
                    }),
                ],
                vec![0, 5],
            ),
            (
                vec![(0, error(0, 429)), (1, page(&[3], None))],
                vec![Err(FetchError {
                    cursor: 0,
                    status: 429,
                })],
                vec![0],
            ),
        ];
        for (pages, want, cursors) in cases {
            let api = fake(pages);
            let got = collect(&api).await;
            assert_eq!(
                got, want,
                "expected the items before the failure, then the error as the last item"
            );
            assert_eq!(
                *api.fetched.borrow(),
                cursors,
                "after a failed fetch the stream ends: expected no more fetches"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_stream_is_lazy() {
        // (items taken, pages that must have been fetched) for each data set
        for ((api, want, _), (take, pages)) in data_sets().into_iter().zip([(4, 2), (5, 2)]) {
            let stream = items(&api);
            assert!(
                api.fetched.borrow().is_empty(),
                "building the stream must not call the API"
            );
            let first: Vec<_> = timeout(LIMIT, stream.take(take).collect()).await.unwrap();
            let want: Vec<_> = want[..take].iter().copied().map(Ok).collect();
            assert_eq!(first, want, "expected the first {take} items");
            assert_eq!(
                api.fetched.borrow().len(),
                pages,
                "the first {take} items are on the first {pages} pages: expected exactly \
                 {pages} fetches, the next page only when its items are wanted"
            );
        }
    }
}
