//! The build context: a sorted walk of the project that honours
//! `.dockerignore` (ignored directories are not even opened), streamed as a
//! deterministic tar - fixed mtime, uid/gid 0, normalised modes - through a
//! bounded channel, so it is never held whole in memory.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use tokio::sync::mpsc;

use super::ignore::DockerIgnore;

/// The mtime every entry gets: same sources, same bytes.
pub const MTIME: u64 = 0;
const CHUNK: usize = 256 * 1024;
/// Chunks in flight between the tar writer and the engine (bounded memory).
const IN_FLIGHT: usize = 8;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File {
        source: PathBuf,
        size: u64,
        executable: bool,
    },
    Symlink {
        target: PathBuf,
    },
    /// Contents shipit made in memory (the rendered Dockerfile, a prebuilt binary's path).
    Generated {
        bytes: Vec<u8>,
        executable: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// `/`-separated path inside the context.
    pub path: String,
    pub kind: Kind,
}

/// Everything under `root` that `.dockerignore` keeps, in sorted order.
pub fn collect(root: &Path, ignore: &DockerIgnore) -> io::Result<Vec<Entry>> {
    let mut entries = Vec::new();
    walk(root, "", ignore, &mut entries)?;
    Ok(entries)
}

/// What `.dockerignore` keeps below `root/rel` (paths stay relative to `root`).
pub fn collect_under(root: &Path, rel: &str, ignore: &DockerIgnore) -> io::Result<Vec<Entry>> {
    let mut entries = Vec::new();
    walk(&root.join(rel), rel, ignore, &mut entries)?;
    Ok(entries)
}

fn walk(dir: &Path, prefix: &str, ignore: &DockerIgnore, out: &mut Vec<Entry>) -> io::Result<()> {
    let mut names: Vec<(String, fs::DirEntry)> = fs::read_dir(dir)?
        .map(|e| e.map(|e| (e.file_name().to_string_lossy().into_owned(), e)))
        .collect::<io::Result<_>>()?;
    names.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, entry) in names {
        let path = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}/{name}")
        };
        let kind = entry.file_type()?;
        let ignored = ignore.is_ignored(&path);
        if kind.is_dir() {
            if ignored && ignore.can_skip_dir(&path) {
                continue;
            }
            if !ignored {
                out.push(Entry {
                    path: path.clone(),
                    kind: Kind::Dir,
                });
            }
            walk(&entry.path(), &path, ignore, out)?;
        } else if ignored {
            continue;
        } else if kind.is_symlink() {
            out.push(Entry {
                path,
                kind: Kind::Symlink {
                    target: fs::read_link(entry.path())?,
                },
            });
        } else if kind.is_file() {
            let meta = entry.metadata()?;
            out.push(Entry {
                path,
                kind: Kind::File {
                    source: entry.path(),
                    size: meta.len(),
                    executable: meta.permissions().mode() & 0o111 != 0,
                },
            });
        }
    }
    Ok(())
}

/// A writer that cuts what it is given into chunks for the channel.
struct ChunkWriter {
    tx: mpsc::Sender<io::Result<bytes::Bytes>>,
    buffer: Vec<u8>,
    written: u64,
}

impl ChunkWriter {
    fn send(&mut self) -> io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buffer, Vec::with_capacity(CHUNK));
        self.tx
            .blocking_send(Ok(bytes::Bytes::from(chunk)))
            .map_err(|_| {
                io::Error::new(
                    io::ErrorKind::BrokenPipe,
                    "the engine stopped reading the build context",
                )
            })
    }
}

impl Write for ChunkWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buffer.extend_from_slice(data);
        self.written += data.len() as u64;
        if self.buffer.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

/// Writes `entries` as a tar into `out`; returns the bytes written.
pub fn write_tar(entries: &[Entry], out: impl Write) -> io::Result<()> {
    let mut tar = tar::Builder::new(out);
    tar.mode(tar::HeaderMode::Deterministic);
    for entry in entries {
        let mut header = tar::Header::new_gnu();
        header.set_mtime(MTIME);
        header.set_uid(0);
        header.set_gid(0);
        match &entry.kind {
            Kind::Dir => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(0o755);
                header.set_size(0);
                tar.append_data(&mut header, format!("{}/", entry.path), io::empty())?;
            }
            Kind::File {
                source,
                size,
                executable,
            } => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(if *executable { 0o755 } else { 0o644 });
                header.set_size(*size);
                let file = fs::File::open(source)?;
                tar.append_data(&mut header, &entry.path, io::Read::take(file, *size))?;
            }
            Kind::Symlink { target } => {
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_mode(0o777);
                header.set_size(0);
                tar.append_link(&mut header, &entry.path, target)?;
            }
            Kind::Generated { bytes, executable } => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(if *executable { 0o755 } else { 0o644 });
                header.set_size(bytes.len() as u64);
                tar.append_data(&mut header, &entry.path, bytes.as_slice())?;
            }
        }
    }
    tar.into_inner()?.flush()
}

/// The tar of `entries` as a stream of chunks, written by a thread; the
/// handle answers how many bytes it wrote.
pub fn stream(
    entries: Vec<Entry>,
) -> (
    mpsc::Receiver<io::Result<bytes::Bytes>>,
    std::thread::JoinHandle<io::Result<u64>>,
) {
    let (tx, rx) = mpsc::channel(IN_FLIGHT);
    let handle = std::thread::spawn(move || {
        let mut writer = ChunkWriter {
            tx: tx.clone(),
            buffer: Vec::with_capacity(CHUNK),
            written: 0,
        };
        let result = write_tar(&entries, &mut writer).and_then(|()| writer.flush());
        match result {
            Ok(()) => Ok(writer.written),
            Err(error) => {
                let message = error.to_string();
                let _ = tx.blocking_send(Err(io::Error::new(error.kind(), message)));
                Err(error)
            }
        }
    });
    (rx, handle)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counts the bytes of the tar without keeping them.
    fn measure(entries: &[Entry]) -> io::Result<u64> {
        struct Counter(u64);
        impl Write for Counter {
            fn write(&mut self, data: &[u8]) -> io::Result<usize> {
                self.0 += data.len() as u64;
                Ok(data.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let mut counter = Counter(0);
        write_tar(entries, &mut counter)?;
        Ok(counter.0)
    }

    fn tree() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for (path, text) in [
            ("src/main.rs", "fn main() {}"),
            ("src/lib.rs", "pub fn x() {}"),
            ("Cargo.toml", "[package]"),
            ("target/release/big", "x"),
            (".git/HEAD", "ref"),
            ("docs/keep.md", "keep"),
            ("docs/drop.md", "drop"),
            (".env", "SECRET=1"),
        ] {
            fs::create_dir_all(root.join(path).parent().unwrap()).unwrap();
            fs::write(root.join(path), text).unwrap();
        }
        dir
    }

    #[test]
    fn collects_sorted_and_skips_ignored() {
        let dir = tree();
        let ignore = DockerIgnore::parse("target/\n.git\n.env\ndocs/*.md\n!docs/keep.md\n");
        let paths: Vec<String> = collect(dir.path(), &ignore)
            .unwrap()
            .into_iter()
            .map(|e| e.path)
            .collect();
        assert_eq!(
            paths,
            [
                "Cargo.toml",
                "docs",
                "docs/keep.md",
                "src",
                "src/lib.rs",
                "src/main.rs"
            ]
        );
    }

    #[test]
    fn ignored_directories_are_not_opened() {
        let dir = tree();
        let locked = dir.path().join("target/locked");
        fs::create_dir_all(&locked).unwrap();
        fs::set_permissions(&locked, fs::Permissions::from_mode(0o000)).unwrap();
        let ignore = DockerIgnore::parse("target/\n");
        let result = collect(dir.path(), &ignore);
        fs::set_permissions(&locked, fs::Permissions::from_mode(0o755)).unwrap();
        assert!(result.is_ok(), "{result:?}");
    }

    #[test]
    fn same_sources_give_the_same_bytes() {
        let a = tree();
        let b = tree();
        fs::set_permissions(
            b.path().join("src/main.rs"),
            fs::Permissions::from_mode(0o600),
        )
        .unwrap();
        let ignore = DockerIgnore::parse("target/\n.git\n");
        let bytes = |root: &Path| {
            let mut out = Vec::new();
            write_tar(&collect(root, &ignore).unwrap(), &mut out).unwrap();
            out
        };
        let (x, y) = (bytes(a.path()), bytes(b.path()));
        assert_eq!(x, y, "paths, modes, owners and mtimes are normalised");
        assert_eq!(
            measure(&collect(a.path(), &ignore).unwrap()).unwrap(),
            x.len() as u64
        );
        let mut archive = tar::Archive::new(x.as_slice());
        for entry in archive.entries().unwrap() {
            let entry = entry.unwrap();
            let h = entry.header();
            assert_eq!(
                (h.mtime().unwrap(), h.uid().unwrap(), h.gid().unwrap()),
                (MTIME, 0, 0)
            );
        }
    }
}
