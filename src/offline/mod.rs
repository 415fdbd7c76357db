//! Images made from this machine's Debian packages, for engines that can
//! pull nothing (`shipit image gateway|python|node`): binaries, exactly the
//! shared libraries they link and the trees they need, FROM scratch, with
//! fixed times and owners so the same packages give the same layers.

mod gateway;
mod interpreter;

use std::collections::BTreeMap;
use std::collections::HashMap;
use std::path::Path;

use crate::engine::{BuildSpec, Engine};
use crate::error::Error;

pub use gateway::{
    GATEWAY_UID, LABEL_PACKAGES, LABEL_PINNED, Plan, gateway_plan, image as gateway_image, pinned,
};
pub use interpreter::{Interpreter, InterpreterPlan, interpreter_plan};

/// Where a file of the image comes from.
#[derive(Debug, Clone)]
pub enum Source {
    /// A file of this machine (its content: links are followed), and its mode.
    File(String, u32),
    Bytes(Vec<u8>, u32),
    Symlink(String),
}

/// An image's root filesystem and Dockerfile (`COPY rootfs/ /`).
#[derive(Debug, Clone)]
pub struct RootImage {
    pub image: String,
    pub dockerfile: String,
    /// Absolute path in the image -> its source.
    pub files: Vec<(String, Source)>,
    /// Directories to create even when empty (`/tmp` is 1777).
    pub dirs: Vec<String>,
}

/// The shared libraries (and the loader) a binary links, by path.
pub(crate) fn libraries(binary: &str) -> Result<Vec<String>, Error> {
    let text = match crate::process::Program::new("ldd", [binary]).read() {
        Ok(text) => text,
        // A statically linked binary needs none.
        Err(e) if e.message.contains("not a dynamic executable") => return Ok(Vec::new()),
        Err(e) => {
            return Err(Error::Usage(format!(
                "cannot list the libraries of {binary} (ldd): {}",
                e.message
            )));
        }
    };
    Ok(text
        .split_whitespace()
        .filter(|w| w.starts_with('/'))
        .map(String::from)
        .collect())
}

/// The build context: the Dockerfile and `rootfs/`, as a deterministic tar.
fn context(image: &RootImage) -> Result<Vec<u8>, Error> {
    let io = |what: &str, e: std::io::Error| Error::Usage(format!("cannot pack {what}: {e}"));
    let mut entries: BTreeMap<String, Source> = BTreeMap::new();
    for (target, source) in &image.files {
        entries.insert(format!("rootfs{target}"), source.clone());
    }
    entries.insert(
        "Dockerfile".into(),
        Source::Bytes(image.dockerfile.clone().into_bytes(), 0o644),
    );
    let mut dirs: Vec<String> = image.dirs.iter().map(|d| format!("rootfs{d}")).collect();
    for name in entries.keys() {
        for dir in Path::new(name).ancestors().skip(1) {
            let dir = dir.display().to_string();
            if !dir.is_empty() && !dirs.contains(&dir) {
                dirs.push(dir);
            }
        }
    }
    dirs.sort();
    dirs.dedup();
    let mut builder = tar::Builder::new(Vec::new());
    let header = |kind: tar::EntryType, size: u64, mode: u32| {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(kind);
        header.set_size(size);
        header.set_mode(mode);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        header
    };
    for dir in &dirs {
        let mode = if dir == "rootfs/tmp" { 0o1777 } else { 0o755 };
        let mut h = header(tar::EntryType::Directory, 0, mode);
        h.set_cksum();
        builder
            .append_data(&mut h, dir, std::io::empty())
            .map_err(|e| io(dir, e))?;
    }
    for (name, source) in &entries {
        match source {
            Source::Symlink(target) => {
                let mut h = header(tar::EntryType::Symlink, 0, 0o777);
                builder
                    .append_link(&mut h, name, target)
                    .map_err(|e| io(name, e))?;
            }
            Source::File(path, mode) => {
                let bytes = std::fs::read(path).map_err(|e| io(path, e))?;
                let mut h = header(tar::EntryType::Regular, bytes.len() as u64, *mode);
                h.set_cksum();
                builder
                    .append_data(&mut h, name, bytes.as_slice())
                    .map_err(|e| io(name, e))?;
            }
            Source::Bytes(bytes, mode) => {
                let mut h = header(tar::EntryType::Regular, bytes.len() as u64, *mode);
                h.set_cksum();
                builder
                    .append_data(&mut h, name, bytes.as_slice())
                    .map_err(|e| io(name, e))?;
            }
        }
    }
    builder.into_inner().map_err(|e| io("the context", e))
}

/// Builds and tags the image; `Ok(false)` when it was already there.
pub async fn make(engine: &Engine, image: &RootImage, force: bool) -> Result<bool, Error> {
    if !force && engine.image_id(&image.image).await.is_some() {
        return Ok(false);
    }
    let tar = bytes::Bytes::from(context(image)?);
    let stream = futures_util::stream::once(async move { Ok::<_, std::io::Error>(tar) });
    let id = engine
        .build(
            stream,
            &BuildSpec {
                dockerfile: "Dockerfile",
                target: "",
                build_args: &HashMap::new(),
                labels: &HashMap::new(),
                no_cache: false,
            },
            |_| {},
        )
        .await?;
    let (repo, tag) = image
        .image
        .rsplit_once(':')
        .filter(|(_, t)| !t.contains('/'))
        .unwrap_or((image.image.as_str(), "latest"));
    engine.tag(&id, repo, tag).await?;
    Ok(true)
}
