//! `shipit image python|node`: the base images the rendered Python and
//! Node.js Dockerfiles start from, made from this machine's interpreter: the
//! binary, the libraries it and its extension modules link, its standard
//! library (Python) or npm (Node.js), FROM scratch. Where nothing can be
//! pulled, set `image.builder` and `image.runtime` to the name it prints.

use std::path::Path;

use serde::Serialize;

use super::{RootImage, Source, libraries};
use crate::error::Error;
use crate::process::Program;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Interpreter {
    Python,
    Node,
    /// Not an interpreter: Go's toolchain, the builder base of `build.kind = "go"`.
    Go,
}

/// What `shipit image python|node` makes and from what.
#[derive(Debug, Clone, Serialize)]
pub struct InterpreterPlan {
    pub image: String,
    pub interpreter: Interpreter,
    pub version: String,
    /// How many files go in, and their bytes.
    pub files: usize,
    pub bytes: u64,
    /// Where they come from on this machine.
    pub sources: Vec<String>,
    #[serde(skip)]
    pub root: RootImage,
}

const PASSWD: &str =
    "root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n";
const GROUP: &str = "root:x:0:\nnogroup:x:65534:\n";

fn missing(what: &str, package: &str) -> Error {
    Error::Usage(format!(
        "the {what} image is made from this machine's {what}, which is not installed here: apt-get install {package}"
    ))
}

/// Every regular file and symlink below `dir`, sorted, skipping directories named in `skip`.
fn tree(dir: &Path, skip: &[&str], out: &mut Vec<(String, Source)>) -> Result<(), Error> {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .flatten()
        .collect();
    names.sort_by_key(|e| e.file_name());
    for entry in names {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        let kind = entry.file_type().map_err(|e| Error::io(&path, e))?;
        let shown = path.display().to_string();
        if kind.is_symlink() {
            let target = std::fs::read_link(&path).map_err(|e| Error::io(&path, e))?;
            out.push((shown, Source::Symlink(target.display().to_string())));
        } else if kind.is_dir() {
            if !skip.contains(&name.as_str()) {
                tree(&path, skip, out)?;
            }
        } else if kind.is_file() {
            use std::os::unix::fs::PermissionsExt;
            let mode = entry
                .metadata()
                .map(|m| m.permissions().mode())
                .unwrap_or(0o644);
            let mode = if mode & 0o111 != 0 { 0o755 } else { 0o644 };
            out.push((shown.clone(), Source::File(shown, mode)));
        }
    }
    Ok(())
}

/// Debian's Go toolchain where Debian puts it (`/usr/lib/go-VERSION`, its
/// sources under `/usr/share/go-VERSION` without tests), `/usr/bin/go`, and
/// a shell (dash) for the rendered Dockerfile's `RUN go build ...`.
fn go_toolchain(
    files: &mut Vec<(String, Source)>,
) -> Result<(String, &'static str, String, Vec<String>), Error> {
    let go = std::fs::canonicalize("/usr/bin/go").map_err(|_| missing("go", "golang-go"))?;
    let go = go.display().to_string();
    let root = go
        .strip_suffix("/bin/go")
        .ok_or_else(|| missing("go", "golang-go"))?
        .to_string();
    let text = Program::new(&go, ["version"])
        .read()
        .map_err(|e| Error::Usage(format!("cannot run {go} version: {}", e.message)))?;
    let version = text
        .split_whitespace()
        .nth(2)
        .map(|v| v.trim_start_matches("go").to_string())
        .ok_or_else(|| Error::Usage(format!("{go} version printed {text}")))?;
    let shared = root.replacen("/usr/lib/", "/usr/share/", 1);
    let mut tree_files = Vec::new();
    tree(Path::new(&root), &[], &mut tree_files)?;
    if Path::new(&shared).is_dir() {
        tree(
            Path::new(&shared),
            &["test", "testdata", "misc", "api"],
            &mut tree_files,
        )?;
    }
    // Not needed to build a service: the standard library precompiled
    // without -trimpath (the build compiles its own into the cache), and the
    // sources of Go's own commands (their binaries are in pkg/tool).
    let (pkg, cmd) = (format!("{root}/pkg/"), format!("{shared}/src/cmd/"));
    let kept = [format!("{pkg}tool"), format!("{pkg}include")];
    tree_files.retain(|(p, _)| {
        (!p.starts_with(&pkg) || kept.iter().any(|k| p.starts_with(k.as_str())))
            && !p.starts_with(&cmd)
    });
    let shell = "/bin/dash".to_string();
    let mut binaries = vec![shell.clone()];
    binaries.extend(
        tree_files
            .iter()
            .filter(|(p, s)| {
                matches!(s, Source::File(_, 0o755))
                    && (p.contains("/bin/") || p.contains("/pkg/tool/"))
            })
            .map(|(p, _)| p.clone()),
    );
    for lib in all_libraries(&binaries)? {
        files.push((lib.clone(), Source::File(lib, 0o755)));
    }
    files.push(("/bin/sh".into(), Source::File(shell, 0o755)));
    let relative = root.trim_start_matches("/usr/");
    files.push((
        "/usr/bin/go".into(),
        Source::Symlink(format!("../{relative}/bin/go")),
    ));
    files.push((
        "/usr/bin/gofmt".into(),
        Source::Symlink(format!("../{relative}/bin/gofmt")),
    ));
    files.extend(tree_files);
    let dockerfile = format!(
        "FROM scratch\n\
         COPY rootfs/ /\n\
         LABEL org.opencontainers.image.title=\"shipit go\" \\\n      \
         org.opencontainers.image.description=\"Go {version} from this machine's Debian packages, made offline\" \\\n      \
         org.opencontainers.image.version=\"{version}\"\n\
         ENV PATH=/usr/local/bin:/usr/bin:/bin \\\n    \
         GOROOT={root} \\\n    \
         GOPATH=/go \\\n    \
         GOCACHE=/root/.cache/go-build \\\n    \
         HOME=/root\n\
         CMD [\"go\", \"version\"]\n"
    );
    Ok((version, "go", dockerfile, vec![root, shared]))
}

/// The libraries of `binaries`, each once, sorted.
fn all_libraries(binaries: &[String]) -> Result<Vec<String>, Error> {
    let mut libs: Vec<String> = Vec::new();
    for binary in binaries {
        for lib in libraries(binary)? {
            if !libs.contains(&lib) {
                libs.push(lib);
            }
        }
    }
    libs.sort();
    Ok(libs)
}

pub fn interpreter_plan(which: Interpreter, image: Option<&str>) -> Result<InterpreterPlan, Error> {
    let mut files: Vec<(String, Source)> = Vec::new();
    let (version, name, dockerfile, sources) = match which {
        Interpreter::Python => {
            let binary = std::fs::canonicalize("/usr/bin/python3")
                .map_err(|_| missing("python", "python3 python3-pip"))?;
            let binary = binary.display().to_string();
            let minor = Path::new(&binary)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(); // python3.11
            let text = Program::new(&binary, ["--version"])
                .merge_stderr()
                .read()
                .map_err(|e| {
                    Error::Usage(format!("cannot run {binary} --version: {}", e.message))
                })?;
            let version = text.trim().trim_start_matches("Python ").to_string();
            let stdlib = format!("/usr/lib/{minor}");
            // The standard library without its tests, IDLE, Tk and compiled caches.
            let skip = [
                "__pycache__",
                "test",
                "tests",
                "idlelib",
                "tkinter",
                "turtledemo",
                "ensurepip",
            ];
            let mut tree_files = Vec::new();
            tree(Path::new(&stdlib), &skip, &mut tree_files)?;
            tree_files.retain(|(p, _)| !p.contains("/config-"));
            let pip = Path::new("/usr/lib/python3/dist-packages/pip");
            if !pip.is_dir() {
                return Err(missing("python", "python3-pip"));
            }
            tree(pip, &["__pycache__"], &mut tree_files)?;
            let extensions: Vec<String> = tree_files
                .iter()
                .filter(|(p, s)| p.ends_with(".so") && matches!(s, Source::File(..)))
                .map(|(p, _)| p.clone())
                .collect();
            let mut binaries = vec![binary.clone()];
            binaries.extend(extensions);
            for lib in all_libraries(&binaries)? {
                files.push((lib.clone(), Source::File(lib, 0o755)));
            }
            files.push((
                format!("/usr/bin/{minor}"),
                Source::File(binary.clone(), 0o755),
            ));
            files.push(("/usr/bin/python3".into(), Source::Symlink(minor.clone())));
            files.extend(tree_files);
            let dockerfile = format!(
                "FROM scratch\n\
                 COPY rootfs/ /\n\
                 LABEL org.opencontainers.image.title=\"shipit python\" \\\n      \
                 org.opencontainers.image.description=\"Python {version} from this machine's Debian packages, with pip, made offline\" \\\n      \
                 org.opencontainers.image.version=\"{version}\"\n\
                 ENV LANG=C.UTF-8 \\\n    \
                 PATH=/usr/local/bin:/usr/bin:/bin\n\
                 CMD [\"python3\"]\n"
            );
            (
                version,
                "python",
                dockerfile,
                vec![binary, stdlib, pip.display().to_string()],
            )
        }
        Interpreter::Node => {
            let binary = ["/usr/bin/node", "/usr/local/bin/node"]
                .iter()
                .find(|p| Path::new(p).exists())
                .map(|p| p.to_string())
                .ok_or_else(|| missing("node", "nodejs npm"))?;
            let text = Program::new(&binary, ["--version"]).read().map_err(|e| {
                Error::Usage(format!("cannot run {binary} --version: {}", e.message))
            })?;
            let version = text.trim().trim_start_matches('v').to_string();
            let npm = ["/usr/lib/node_modules/npm", "/usr/share/nodejs/npm"]
                .iter()
                .find(|p| Path::new(p).is_dir())
                .map(|p| p.to_string())
                .ok_or_else(|| missing("node", "npm"))?;
            // npm's launcher is a `#!/usr/bin/env node` script: env comes too.
            let env = "/usr/bin/env".to_string();
            for lib in all_libraries(&[binary.clone(), env.clone()])? {
                files.push((lib.clone(), Source::File(lib, 0o755)));
            }
            files.push(("/usr/bin/node".into(), Source::File(binary.clone(), 0o755)));
            files.push(("/usr/bin/env".into(), Source::File(env, 0o755)));
            let mut tree_files = Vec::new();
            tree(Path::new(&npm), &[], &mut tree_files)?;
            for (path, source) in tree_files {
                let inside = path.replacen(&npm, "/usr/lib/node_modules/npm", 1);
                files.push((inside, source));
            }
            files.push((
                "/usr/bin/npm".into(),
                Source::Symlink("../lib/node_modules/npm/bin/npm-cli.js".into()),
            ));
            let dockerfile = format!(
                "FROM scratch\n\
                 COPY rootfs/ /\n\
                 LABEL org.opencontainers.image.title=\"shipit node\" \\\n      \
                 org.opencontainers.image.description=\"Node.js {version} and npm from this machine, made offline\" \\\n      \
                 org.opencontainers.image.version=\"{version}\"\n\
                 ENV PATH=/usr/local/bin:/usr/bin:/bin\n\
                 CMD [\"node\"]\n"
            );
            (version, "node", dockerfile, vec![binary, npm])
        }
        Interpreter::Go => go_toolchain(&mut files)?,
    };
    files.push(("/etc/passwd".into(), Source::Bytes(PASSWD.into(), 0o644)));
    files.push(("/etc/group".into(), Source::Bytes(GROUP.into(), 0o644)));
    files.push((
        "/etc/nsswitch.conf".into(),
        Source::Bytes(b"hosts: files dns\n".to_vec(), 0o644),
    ));
    let certificates = "/etc/ssl/certs/ca-certificates.crt";
    if Path::new(certificates).exists() {
        files.push((
            certificates.into(),
            Source::File(certificates.into(), 0o644),
        ));
    }
    let bytes = files
        .iter()
        .map(|(_, s)| match s {
            Source::File(p, _) => std::fs::metadata(p).map(|m| m.len()).unwrap_or(0),
            Source::Bytes(b, _) => b.len() as u64,
            Source::Symlink(_) => 0,
        })
        .sum();
    let image = image
        .map(String::from)
        .unwrap_or_else(|| format!("shipit-offline/{name}:{version}"));
    Ok(InterpreterPlan {
        interpreter: which,
        version,
        files: files.len(),
        bytes,
        sources,
        root: RootImage {
            image: image.clone(),
            dockerfile,
            files,
            dirs: vec!["/tmp".into(), "/root".into()],
        },
        image,
    })
}
