//! The listing engine's tests, on the store models of [`super::testing`].

use std::collections::BTreeSet;
use std::sync::Arc;

use futures::TryStreamExt;
use tokio::sync::mpsc;

use super::chunk::{BoundCell, Chunk, ChunkProgress, list_chunk_pages};
use super::plan::{Part, plan};
use super::testing::{FolderWalk, MemoryBucket};
use super::*;

async fn keys_of(stream: PageStream<'static>) -> Vec<String> {
    stream
        .map_ok(|p| p.into_iter().map(|o| o.key).collect::<Vec<_>>())
        .try_concat()
        .await
        .expect("lists")
}

fn shapes() -> Vec<(&'static str, Vec<String>)> {
    let flat = (0..3000).map(|i| format!("img{i:05}.jpg")).collect();
    let deep = (0..3000)
        .map(|i| format!("d{}/s{}/c{}/{i:05}.jpg", i % 5, i % 7, i % 3))
        .collect();
    let skewed = (0..2500)
        .map(|i| format!("big/{i:05}.jpg"))
        .chain((0..30).map(|i| format!("small{i}/x.jpg")))
        .chain(["big.jpg", "big-0/a.jpg", "big0", "a", "z/"].map(String::from))
        .collect();
    let one_huge = (0..3000).map(|i| format!("data/train/{}/{i:05}.png", i % 40)).collect();
    let hashed = (0u64..5000)
        .map(|i| format!("h/{:016x}.png", i.wrapping_mul(0x9E37_79B9_7F4A_7C15)))
        .collect();
    let flat_with_folders = (0..2500)
        .map(|i| format!("f/{i:05}.jpg"))
        .chain((0..300).map(|i| format!("f/{i:05}/x{i}")))
        .chain((0..300).map(|i| format!("f/zz/{i}")))
        .chain(["f/a-b/c", "f/a/c", "f/é", "f/😀"].map(String::from))
        .collect();
    // One folder per level, deep: the plan cannot split it, and its first
    // page has folders in it, so it is listed whole after that page.
    let narrow = (0..3000)
        .map(|i| format!("n/l1/l2/l3/l4/l5/{}/{i:05}", i % 2))
        .collect();
    let tricky = [
        "a", "a/", "a/b", "a-b/c", "a.b", "a0", "a/b/", "a//c", "/x", "//y", "b~", "é/x", "😀/y",
    ]
    .map(String::from)
    .to_vec();
    vec![
        ("flat", flat),
        ("deep", deep),
        ("skewed", skewed),
        ("one huge prefix", one_huge),
        ("hashed", hashed),
        ("flat with folders", flat_with_folders),
        ("narrow and deep", narrow),
        ("tricky", tricky),
    ]
    .into_iter()
    .chain(from_any_root(3000))
    .collect()
}

/// Shapes whose level under the root holds a single folder, `n` keys each: the
/// planner must go down to where the listing splits.
fn from_any_root(n: usize) -> Vec<(&'static str, Vec<String>)> {
    let one_folder = (0..n).map(|i| format!("frames/{:03}/{i:06}.jpg", i % 20)).collect();
    let chain = (0..n).map(|i| format!("a/b/c/d/e/{:02}/{i:06}.jpg", i % 20)).collect();
    let files_and_a_folder = (0..5)
        .map(|i| format!("readme{i}.txt"))
        .chain((0..n).map(|i| format!("data/{:02}/{i:06}.jpg", i % 20)))
        .collect();
    let one_flat_folder = (0..n).map(|i| format!("images/{i:06}.jpg")).collect();
    vec![
        ("one folder", one_folder),
        ("a chain of single folders", chain),
        ("a few files and one folder", files_and_a_folder),
        ("one flat folder", one_flat_folder),
    ]
}

/// The measured defect: with one folder under the root, the whole listing ran one
/// request at a time. From the root, every shape now keeps most of the permits
/// busy, for few requests more than a sequential listing's pages.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_shape_lists_concurrently_from_its_root() {
    for (name, keys) in from_any_root(20_000) {
        let bucket = MemoryBucket::new(keys, 100);
        let listed = keys_of(list_concurrently(bucket.clone(), String::new(), 16)).await;
        assert!(
            listed == bucket.keys_under(""),
            "{name}: the same keys in the same order"
        );
        let (max, requests) = (bucket.max_in_flight(), bucket.requests());
        eprintln!("{name}: {requests} requests, {max} in flight at most");
        assert!(max >= 12, "{name}: at most {max} requests in flight of 16");
        assert!(max <= 16, "{name}: {max} in flight, over the bound");
        // 200 pages sequentially. Folders of 10 pages are chunked (3 requests
        // per 2.75 pages, and a few chunks started past a folder's end), and
        // planning a chain costs a request per level: under half as many again.
        assert!(requests <= 300, "{name}: {requests} requests");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn output_is_identical_to_the_sequential_listing_on_every_shape() {
    for (name, keys) in shapes() {
        let bucket = MemoryBucket::new(keys, 100);
        for prefix in ["", "d1/", "big", "data/train/", "h/", "f/", "f/0", "n/"] {
            let sequential = keys_of(list_concurrently(bucket.clone(), prefix.to_owned(), 1)).await;
            let expected: Vec<String> = bucket.keys.iter().filter(|k| k.starts_with(prefix)).cloned().collect();
            assert_eq!(sequential, expected, "{name} {prefix:?}: sequential is byte order");
            for concurrency in [2, 8, 16] {
                let concurrent = keys_of(list_concurrently(bucket.clone(), prefix.to_owned(), concurrency)).await;
                assert_eq!(concurrent, sequential, "{name} {prefix:?} at concurrency {concurrency}");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn requests_in_flight_stay_within_the_bound_and_do_overlap() {
    let keys = (0..4000).map(|i| format!("p{}/{i:05}.jpg", i % 50));
    let bucket = MemoryBucket::new(keys, 20);
    let listed = keys_of(list_concurrently(bucket.clone(), String::new(), 8)).await;
    assert_eq!(listed.len(), 4000);
    let max = bucket.max_in_flight();
    // Planning's level listings take the same permits as every other request.
    assert!(
        max <= 8,
        "at most the concurrency in flight, planning included; saw {max}"
    );
    assert!(max > 1, "listing went concurrent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flat_folder_is_listed_in_concurrent_chunks_without_many_extra_requests() {
    let bucket = MemoryBucket::new((0..20_000).map(|i| format!("images/{i:06}.jpg")), 100);
    let listed = keys_of(list_concurrently(bucket.clone(), "images/".into(), 16)).await;
    let expected: Vec<String> = bucket.keys.iter().cloned().collect();
    assert_eq!(listed, expected);
    let max = bucket.max_in_flight();
    let requests = bucket.requests();
    assert!(max > 8, "chunks were listed concurrently: at most {max} in flight");
    // Sequentially 200 pages. Chunks of 2.75 pages take 3 requests each (the
    // last finds the boundary), and a few start past the end before it is
    // found: about 15 % more in all (chunks of 3 pages took 4, a third more).
    assert!(requests < 200 * 5 / 4, "{requests} requests");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn folders_of_exactly_one_page_cost_no_extra_request() {
    let keys = (0..1000).map(|i| format!("c{}/{i:04}.jpg", i / 100));
    let bucket = MemoryBucket::new(keys, 100);
    let listed = keys_of(list_concurrently(bucket.clone(), String::new(), 16)).await;
    assert_eq!(listed.len(), 1000);
    // One level listing of the root, then one page per folder and, beside
    // them, one flat page of the root to check the folder walk against.
    assert_eq!(bucket.requests(), 1 + 1 + 10);
}

/// A store whose listing is not in byte order (as some S3-compatible servers
/// list a folder before a sibling file that sorts first).
struct FolderFirst(Arc<MemoryBucket>);

#[async_trait::async_trait]
impl ListClient for FolderFirst {
    fn capabilities(&self) -> Capabilities {
        self.0.capabilities()
    }

    async fn list_page(&self, request: ListRequest<'_>) -> Result<ListPage, Error> {
        // Ranged listings (every chunk's) come with two keys swapped.
        let mut page = self.0.list_page(request).await?;
        if request.start_after.is_some() && page.objects.len() > 1 {
            page.objects.swap(0, 1);
        }
        Ok(page)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listing_out_of_byte_order_fails_rather_than_losing_keys() {
    let bucket = MemoryBucket::new((0..3000).map(|i| format!("{i:05}")), 100);
    let err = list_concurrently(Arc::new(FolderFirst(bucket)), String::new(), 8)
        .try_concat()
        .await
        .expect_err("out of order");
    assert!(err.to_string().contains("out of byte order"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flat_level_is_one_part_holding_only_its_first_page() {
    let bucket = MemoryBucket::new((0..5000).map(|i| format!("flat/{i:05}")), 100);
    let parts = plan(&Context::new(bucket.clone(), 16), "flat/", 64, None, None)
        .await
        .expect("plans");
    let [Part::Flat { prefix, first }] = &parts[..] else {
        panic!("one flat part: {parts:?}")
    };
    assert_eq!((prefix.as_str(), first.len()), ("flat/", 100));
    assert_eq!(bucket.requests(), 1, "decided on the first page");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_single_page_level_is_not_taken_for_a_flat_one() {
    let bucket = MemoryBucket::new((0..100).map(|i| format!("one/{i:05}")), 100);
    let parts = plan(&Context::new(bucket.clone(), 16), "one/", 64, None, None)
        .await
        .expect("plans");
    assert!(matches!(&parts[..], [Part::Objects(o)] if o.len() == 100), "{parts:?}");
}

/// Files, then a big sub-folder the first page's names say nothing about: the
/// chunks skip the gap and the tail is cut again from a sample of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_tail_past_the_first_boundaries_is_split_again() {
    let keys = (0..3000)
        .map(|i| format!("f/{i:05}.jpg"))
        .chain((0..20_000).map(|i| format!("f/labels/{i:06}.txt")));
    let bucket = MemoryBucket::new(keys, 100);
    let listed = keys_of(list_concurrently(bucket.clone(), "f/".into(), 16)).await;
    let expected: Vec<String> = bucket.keys.iter().cloned().collect();
    assert_eq!(listed, expected);
    let requests = bucket.requests();
    let max = bucket.max_in_flight();
    eprintln!("{requests} requests, {max} in flight at most");
    // Sequentially 230 pages. Chunked: about 3 requests per 2.75 pages, one
    // for the gap after the files, and the chunks started past the end before
    // it was found (without the skip over the gap, 400 or more).
    assert!(requests < 300, "{requests} requests");
    assert!(max > 8, "the tail was listed concurrently: at most {max} in flight");
}

/// On a store that does not list in byte order, a concurrent listing either
/// notices (and fails, to be rerun sequentially) or lists every key: never
/// fewer in silence, wherever the chunk boundaries fall.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_folder_walk_listing_fails_or_lists_every_key() {
    let mut failed = 0;
    for seed in 0..20u64 {
        let mut keys = Vec::new();
        for i in 0..1500u64 {
            let name = format!("f/k{i:04}");
            // Past the first pages (which must look flat for chunks to be
            // used), some names are folders with siblings that sort before `/`.
            let pick = (i.wrapping_mul(2654435761) ^ seed.wrapping_mul(40503)) % 23;
            match (i > 400 || pick != 0).then_some(pick) {
                Some(0) => {
                    keys.extend((0..40).map(|j| format!("{name}/x{j:02}")));
                    keys.push(format!("{name}-a"));
                    keys.push(format!("{name}.b"));
                }
                // Siblings everywhere, so that `-` and `.` are among the
                // characters the boundaries are made of.
                Some(1..=4) => keys.extend([format!("{name}-c"), format!("{name}.d"), name]),
                _ => keys.push(name),
            }
        }
        let store = FolderWalk::new(keys.clone(), 50 + (seed as usize % 4) * 25);
        let expected: BTreeSet<String> = keys.into_iter().collect();
        for concurrency in [4, 16] {
            match list_concurrently(store.clone(), "f/".into(), concurrency)
                .try_concat()
                .await
            {
                Ok(listed) => {
                    let listed: BTreeSet<String> = listed.into_iter().map(|o| o.key).collect();
                    let missing: Vec<_> = expected.difference(&listed).take(5).collect();
                    assert!(
                        missing.is_empty() && listed.len() == expected.len(),
                        "seed {seed} at {concurrency}: lost {missing:?}"
                    );
                }
                Err(e) => {
                    assert!(e.to_string().contains("out of byte order"), "{e}");
                    failed += 1;
                }
            }
        }
    }
    assert!(failed > 0, "the walk order was noticed at least once");
}

/// Lists one chunk `(after, until]` alone, as the window would.
async fn one_chunk(client: Arc<dyn ListClient>, after: &str, until: Option<&str>) -> Result<Vec<String>, Error> {
    let context = Context::new(client, 4);
    let bound = BoundCell::default();
    {
        let mut b = bound.lock();
        (b.after, b.reached, b.until) = (after.into(), after.into(), until.map(str::to_owned));
    }
    let chunk = Chunk {
        prefix: "f/".into(),
        speculative: false,
        bound: Arc::new(bound),
        target: 1000,
        progress: ChunkProgress::new(1),
    };
    let (tx, mut rx) = mpsc::channel(64);
    list_chunk_pages(&context, &chunk, &tx).await?;
    drop(tx);
    let mut keys = Vec::new();
    while let Some(page) = rx.recv().await {
        keys.extend(page?.into_iter().map(|o| o.key));
    }
    Ok(keys)
}

/// A boundary between `f/k5-a` and `f/k5/…` (`-` < `/`): a folder-walking store
/// lists the folder first, so the chunk below the boundary meets a key above it
/// and stops before `f/k5-a`, and the chunk above resumes the walk after the
/// boundary, past both. Neither sees keys out of order: the boundary itself
/// has to be checked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_boundary_inside_a_folder_gap_is_caught_on_a_folder_walking_store() {
    let keys: Vec<String> = (0..10)
        .map(|i| format!("f/k{i}"))
        .chain((0..100).map(|j| format!("f/k5/x{j:02}")))
        .chain(["f/k5-a".to_owned(), "f/k5.b".to_owned()])
        .collect();
    let (after, until) = ("f/k0", "f/k5-z");
    let walk = FolderWalk::new(keys.clone(), 20);
    let below = one_chunk(walk.clone(), after, Some(until)).await;
    let err = below.expect_err("the gap is noticed");
    assert!(err.to_string().contains("out of byte order"), "{err}");

    // Folders within the gap: `f/k5-a/` is walked before `f/k5-a-b`.
    let mut nested: Vec<String> = keys.iter().filter(|k| !k.starts_with("f/k5-a")).cloned().collect();
    nested.extend(["f/k5-a/z", "f/k5-a-b"].map(String::from));
    let walk = FolderWalk::new(nested, 20);
    let err = one_chunk(walk, after, Some("f/k5-a-z")).await.expect_err("noticed");
    assert!(err.to_string().contains("`f/k5-a-b`"), "{err}");

    // A store in byte order: the same two chunks list every key once.
    let bytes = MemoryBucket::new(keys.clone(), 20);
    let mut listed = one_chunk(bytes.clone(), after, Some(until)).await.expect("below");
    listed.extend(one_chunk(bytes, until, None).await.expect("above"));
    let mut expected: Vec<String> = keys.into_iter().filter(|k| k.as_str() > after).collect();
    expected.sort();
    assert_eq!(listed, expected);
}

/// A store whose one-level listings start with an empty page that says more
/// follow, as GCS may answer.
struct EmptyFirstLevelPage(Arc<MemoryBucket>);

#[async_trait::async_trait]
impl ListClient for EmptyFirstLevelPage {
    fn capabilities(&self) -> Capabilities {
        self.0.capabilities()
    }

    async fn list_page(&self, request: ListRequest<'_>) -> Result<ListPage, Error> {
        if request.delimited && request.token.is_none() {
            return Ok(ListPage {
                next: Some("\u{0}".into()),
                ..ListPage::default()
            });
        }
        let token = request.token.filter(|t| *t != "\u{0}");
        self.0.list_page(ListRequest { token, ..request }).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_first_level_page_is_not_taken_for_a_flat_folder() {
    for (name, keys) in shapes() {
        let bucket = MemoryBucket::new(keys, 100);
        let store = Arc::new(EmptyFirstLevelPage(bucket.clone()));
        let listed = keys_of(list_concurrently(store, String::new(), 8)).await;
        let expected: Vec<String> = bucket.keys.iter().cloned().collect();
        assert_eq!(listed, expected, "{name}");
    }
}

/// A store whose "start after" is inclusive, as GCS's `startOffset` and Azure's
/// `startFrom` are: the key itself comes back first.
struct InclusiveStart(Arc<MemoryBucket>);

#[async_trait::async_trait]
impl ListClient for InclusiveStart {
    fn capabilities(&self) -> Capabilities {
        self.0.capabilities()
    }

    async fn list_page(&self, request: ListRequest<'_>) -> Result<ListPage, Error> {
        let mut page = self.0.list_page(request).await?;
        if let (Some(after), None) = (request.start_after, request.token)
            && self.0.keys.contains(after)
        {
            page.objects.insert(0, MemoryBucket::object(after));
        }
        Ok(page)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inclusive_start_key_is_not_listed_twice() {
    let bucket = MemoryBucket::new((0..300).map(|i| format!("k{i:03}")), 100);
    let store = InclusiveStart(bucket.clone());
    let listed: Vec<String> = store
        .list("", Some("k099"))
        .map_ok(|p| p.into_iter().map(|o| o.key).collect::<Vec<_>>())
        .try_concat()
        .await
        .expect("lists");
    let expected: Vec<String> = (100..300).map(|i| format!("k{i:03}")).collect();
    assert_eq!(listed, expected);
    let concurrent = keys_of(list_concurrently(
        Arc::new(InclusiveStart(bucket.clone())),
        String::new(),
        8,
    ))
    .await;
    assert_eq!(concurrent, bucket.keys_under(""));
}

/// A chain of single folders is gone down in two rounds: the root's level, then
/// the first key and every level of the chain at once. The plan ends at the 20
/// folders (each more than a page, so each a flat part).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chain_of_single_folders_is_planned_in_two_rounds() {
    let keys = (0..6000).map(|i| format!("a/b/c/d/e/{:02}/{i:05}.jpg", i % 20));
    // Requests of 25 ms, not 2: round trips are counted by requests that start
    // with none in flight, and on a loaded machine (CI building beside the tests)
    // a 2 ms request can end before its sibling of the same round has started.
    let bucket = MemoryBucket::with_latency(keys, 100, std::time::Duration::from_millis(25));
    let parts = plan(&Context::new(bucket.clone(), 16), "", 64, None, None)
        .await
        .expect("plans");
    let flat: Vec<&str> = parts
        .iter()
        .filter_map(|p| match p {
            Part::Flat { prefix, .. } => Some(prefix.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!((flat.len(), parts.len()), (20, 20), "20 flat parts, nothing else");
    assert!(flat.iter().all(|p| p.starts_with("a/b/c/d/e/")), "{:?}", &flat[..3]);
    // "", then a/ beside its first key, then a/b/ … a/b/c/d/e/00/ together, then
    // the 20 folders' levels: 1 + 2 + 5 + 20 requests in 4 round trips (a fifth
    // may show when a request starts just as another ends); one a level, 8 in all,
    // before.
    eprintln!("{} requests, {} round trips", bucket.requests(), bucket.idle_starts());
    assert_eq!(bucket.requests(), 28);
    assert!(
        bucket.idle_starts() <= 5,
        "{} round trips one after another",
        bucket.idle_starts()
    );
}

/// A store whose folder listings leave out a folder holding only folders (as
/// s3rver's do): the flat page fetched beside the plan shows keys the walk does
/// not cover, and the prefix is listed flat, whole. Before the check, the walk
/// wrote 1 of 3 keys under `mix/` and 0 of 136 under `data/p1`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_folder_walk_that_leaves_out_folders_is_not_trusted() {
    use super::testing::DropsFolderOnly;
    let keys: Vec<String> = ["mix/a.jpg", "mix/sub/deeper/b.jpg", "mix/sub/deeper/c.jpg"]
        .into_iter()
        .map(str::to_owned)
        .chain((0..136).map(|i| format!("data/p1/part-{:02}/x/{i:03}.jpg", i % 8)))
        .collect();
    let store = DropsFolderOnly::new(keys, 10);
    for prefix in ["mix/", "data/p1", "data/", ""] {
        let listed = keys_of(list_concurrently(store.clone(), prefix.into(), 8)).await;
        assert_eq!(listed, store.bucket.keys_under(prefix), "{prefix}");
    }
    // A store whose walk is whole is not listed flat: the plan splits it.
    let bucket = MemoryBucket::new((0..400).map(|i| format!("d{}/k{i:03}", i % 4)), 10);
    let listed = keys_of(list_concurrently(bucket.clone(), String::new(), 8)).await;
    assert_eq!(listed, bucket.keys_under(""));
    assert!(bucket.max_in_flight() > 1, "listed concurrently");
}

/// The benchmark's five shapes (`scripts/bench.sh`), 100 pages each.
fn bench_shapes(n: usize) -> Vec<(&'static str, Vec<String>)> {
    let at = |prefix: &str, i: usize| format!("{prefix}{:03}/img{i:07}.jpg", i % 20);
    vec![
        (
            "folders",
            (0..n).map(|i| format!("class{:02}/img{i:07}.jpg", i % 100)).collect(),
        ),
        ("flat", (0..n).map(|i| format!("img{i:07}.jpg")).collect()),
        ("one-folder", (0..n).map(|i| at("frames/", i)).collect()),
        ("chain", (0..n).map(|i| at("a/b/c/d/e/", i)).collect()),
        (
            "files-and-folder",
            (0..5)
                .map(|j| format!("readme{j}.txt"))
                .chain((0..n).map(|i| at("data/", i)))
                .collect(),
        ),
    ]
}

/// The benchmark's five shapes of 100 pages, every request one round trip long,
/// in paused time (so the count is exact, whatever the machine's load). 100
/// pages on 16 permits take 7 round trips at best, after the root's level has
/// answered: 8. The flat shape's chunks wait for its first page, a lone folder's
/// sub-folders for its level, and a chain's levels for its first key: 8 / 9 / 9
/// / 10 / 9. Before: 8 / 9 / 14 / 15 / 14, from chunks that stopped at
/// boundaries no other chunk started from and chunks past a folder's end that
/// the listing waited for.
#[tokio::test(start_paused = true)]
async fn the_benchmark_shapes_list_within_the_fewest_round_trips() {
    let rtt = std::time::Duration::from_millis(50);
    for ((name, keys), most) in bench_shapes(10_000).into_iter().zip([8, 9, 9, 10, 9]) {
        let bucket = MemoryBucket::with_latency(keys, 100, rtt);
        let start = tokio::time::Instant::now();
        let listed = keys_of(list_concurrently(bucket.clone(), String::new(), 16)).await;
        let took = start.elapsed().as_secs_f64() / rtt.as_secs_f64();
        assert!(
            listed == bucket.keys_under(""),
            "{name}: the same keys in the same order"
        );
        eprintln!("{name}: {took:.2} round trips, {} requests", bucket.requests());
        assert!(
            took <= f64::from(most) + 0.01,
            "{name}: {took:.2} round trips, not {most}"
        );
        // At most a quarter more requests than pages (100, and the plan's few).
        assert!(bucket.requests() <= 130, "{name}: {} requests", bucket.requests());
    }
}
