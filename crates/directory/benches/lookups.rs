//! Directory throughput under concurrency: recipient resolution (the SMTP RCPT path and
//! the router) and password authentication, each from many tokio tasks at once on a
//! file-backed (WAL) directory. Prints figures; asserts no times.
//!
//! `cargo bench -p postern-directory --bench lookups`

use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use postern_directory::{Address, DirectoryOptions, PasswordParams, Resolution};

/// How the bench reaches the directory: through the [`Directory`] trait, whose lookups
/// run in `spawn_blocking` over a pool of WAL read connections. (The "before" figures
/// came from main's code: the struct behind one mutex, called in `spawn_blocking`.)
mod backend {
    use std::path::Path;
    use std::sync::Arc;

    use postern_directory::{Address, Directory, DirectoryOptions, Resolution, SqliteDirectory};

    pub(crate) type Dir = SqliteDirectory;

    pub(crate) fn open(path: &Path, options: DirectoryOptions) -> Dir {
        SqliteDirectory::open_with(path, options).unwrap()
    }

    pub(crate) async fn resolve(dir: &Arc<Dir>, address: &Address) -> Resolution {
        let dir: &dyn Directory = &**dir;
        dir.resolve(address).await.unwrap()
    }

    pub(crate) async fn authenticate(
        dir: &Arc<Dir>,
        login: String,
        password: &'static [u8],
    ) -> bool {
        let dir: Arc<dyn Directory> = dir.clone();
        tokio::task::spawn_blocking(move || dir.authenticate(&login, password).unwrap().is_some())
            .await
            .unwrap()
    }
}

const ACCOUNTS: usize = 200;
const TASKS: &[usize] = &[1, 8, 32];
const RESOLVES_PER_TASK: usize = 200;
const AUTHS_PER_TASK: usize = 10;

fn setup(dir: &tempfile::TempDir) -> Arc<backend::Dir> {
    let d = backend::open(
        &dir.path().join("directory.db"),
        DirectoryOptions {
            password_params: PasswordParams::insecure_fast_for_tests(),
            ..DirectoryOptions::default()
        },
    );
    d.add_domain("example.org").unwrap();
    for i in 0..ACCOUNTS {
        d.add_account(&format!("user{i}@example.org"), "secret")
            .unwrap();
    }
    d.add_alias(
        "staff@example.org",
        &["user1@example.org", "user2@example.org"],
    )
    .unwrap();
    d.add_alias("@example.org", &["user0@example.org"]).unwrap();
    Arc::new(d)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn resolve(c: &mut Criterion) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = setup(&tmp);
    let rt = runtime();
    let addresses: Arc<Vec<Address>> = Arc::new(
        (0..RESOLVES_PER_TASK)
            .map(|i| match i % 4 {
                0 => format!("user{}@example.org", i % ACCOUNTS),
                1 => format!("user{}+tag@example.org", i % ACCOUNTS),
                2 => "staff@example.org".to_string(),
                _ => format!("nobody{i}@example.org"),
            })
            .map(|a| Address::parse(&a).unwrap())
            .collect(),
    );
    let mut group = c.benchmark_group("resolve");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(4));
    for &tasks in TASKS {
        group.throughput(Throughput::Elements((tasks * RESOLVES_PER_TASK) as u64));
        group.bench_with_input(BenchmarkId::from_parameter(tasks), &tasks, |b, &tasks| {
            b.iter(|| {
                rt.block_on(async {
                    let mut handles = Vec::with_capacity(tasks);
                    for _ in 0..tasks {
                        let dir = dir.clone();
                        let addresses = addresses.clone();
                        handles.push(tokio::spawn(async move {
                            for a in addresses.iter() {
                                let r = backend::resolve(&dir, a).await;
                                assert!(matches!(r, Resolution::Deliver(_)));
                            }
                        }));
                    }
                    for h in handles {
                        h.await.unwrap();
                    }
                })
            })
        });
    }
    group.finish();
}

fn authenticate(c: &mut Criterion) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = setup(&tmp);
    let rt = runtime();
    let mut group = c.benchmark_group("authenticate");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(4));
    for &tasks in TASKS {
        group.throughput(Throughput::Elements((tasks * AUTHS_PER_TASK) as u64));
        group.bench_with_input(BenchmarkId::from_parameter(tasks), &tasks, |b, &tasks| {
            b.iter(|| {
                rt.block_on(async {
                    let mut handles = Vec::with_capacity(tasks);
                    for t in 0..tasks {
                        let dir = dir.clone();
                        handles.push(tokio::spawn(async move {
                            for i in 0..AUTHS_PER_TASK {
                                let login = format!("user{}@example.org", (t * 7 + i) % ACCOUNTS);
                                let ok = backend::authenticate(&dir, login, b"secret").await;
                                assert!(ok);
                            }
                        }));
                    }
                    for h in handles {
                        h.await.unwrap();
                    }
                })
            })
        });
    }
    group.finish();
}

// criterion_group! writes an undocumented `pub fn benches`.
#[allow(missing_docs)]
mod group {
    use super::*;
    criterion_group!(benches, resolve, authenticate);
}
use group::benches;
criterion_main!(benches);
