//! File events for watch mode. The whole `exercises/` folder is watched recursively, not single
//! files, so that editors that save by renaming (vim, JetBrains) or by delete-and-create
//! (`sed -i`) are seen. Events are filtered to the current exercise by the loop.
use crate::error::{Error, Result};
use notify::{EventKind, RecursiveMode, Watcher};
use std::path::{Path, PathBuf};
use std::sync::mpsc::Sender;
use std::time::{Duration, SystemTime};

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum How {
    Events,
    Poll,
    Manual,
}

/// Keeps the watcher alive; dropping it stops the events.
pub struct FileWatch {
    _watcher: Option<Box<dyn Watcher + Send>>,
}

pub fn watch<E: Send + 'static>(
    dir: &Path,
    how: How,
    tx: Sender<E>,
    wrap: fn(PathBuf) -> E,
) -> Result<FileWatch> {
    let handler = move |res: notify::Result<notify::Event>| {
        let Ok(event) = res else { return };
        if matches!(event.kind, EventKind::Access(_)) {
            return;
        }
        for p in event.paths {
            let _ = tx.send(wrap(p));
        }
    };
    let mut watcher: Box<dyn Watcher + Send> = match how {
        How::Manual => return Ok(FileWatch { _watcher: None }),
        How::Events => {
            Box::new(notify::recommended_watcher(handler).map_err(|e| setup_error(dir, e))?)
        }
        How::Poll => Box::new(
            notify::PollWatcher::new(
                handler,
                notify::Config::default().with_poll_interval(Duration::from_millis(200)),
            )
            .map_err(|e| setup_error(dir, e))?,
        ),
    };
    watcher
        .watch(dir, RecursiveMode::Recursive)
        .map_err(|e| setup_error(dir, e))?;
    Ok(FileWatch {
        _watcher: Some(watcher),
    })
}

fn setup_error(dir: &Path, e: notify::Error) -> Error {
    Error::new(format!("cannot watch {} for changes: {e}", dir.display()))
        .help("try `backlings --poll` (polls the files), or `backlings --manual` (press r to run)")
}

/// The file's modification time and length: what the one-second safety net compares.
pub fn stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}
