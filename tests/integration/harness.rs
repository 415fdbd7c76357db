//! A throw-away project and a way to run the real `shipit` binary in it.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Project {
    dir: tempfile::TempDir,
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    #[track_caller]
    pub fn success(self) -> Run {
        assert_eq!(
            self.code, 0,
            "expected success\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }

    #[track_caller]
    pub fn code(self, code: i32) -> Run {
        assert_eq!(
            self.code, code,
            "expected exit {code}\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

/// The repository this test binary was built from.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The workspace version, masked in snapshots so they survive releases.
pub fn repo_version() -> String {
    let manifest: toml::Table = fs::read_to_string(repo().join("Cargo.toml"))
        .unwrap()
        .parse()
        .unwrap();
    manifest["workspace"]["package"]["version"]
        .as_str()
        .unwrap()
        .to_string()
}

impl Project {
    /// An empty project.
    pub fn empty() -> Project {
        Project {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    /// A copy of this repository's environments and manifest.
    pub fn from_repo() -> Project {
        let project = Project::empty();
        for entry in fs::read_dir(repo().join("environments")).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().into_string().unwrap();
            project.write(
                &format!("environments/{name}"),
                &fs::read_to_string(entry.path()).unwrap(),
            );
        }
        project.write(
            "Cargo.toml",
            &fs::read_to_string(repo().join("Cargo.toml")).unwrap(),
        );
        project
    }

    /// A project with a minimal base and one environment file `test.toml`.
    pub fn minimal(env: &str) -> Project {
        let project = Project::empty();
        project.write(
            "environments/base.toml",
            "[app]\nname = \"calculator\"\nversion_source = \"config\"\nversion = \"1.0.0\"\n",
        );
        project.write("environments/test.toml", env);
        project
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn write(&self, path: &str, contents: &str) {
        let path = self.dir.path().join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, contents).unwrap();
    }

    pub fn read(&self, path: &str) -> String {
        fs::read_to_string(self.dir.path().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    pub fn exists(&self, path: &str) -> bool {
        self.dir.path().join(path).exists()
    }

    /// Every file below `dir`, relative to it, sorted, with its bytes.
    pub fn tree(&self, dir: &str) -> Vec<(String, Vec<u8>)> {
        fn walk(base: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
            for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    walk(base, &path, out);
                } else {
                    let rel = path
                        .strip_prefix(base)
                        .unwrap()
                        .to_string_lossy()
                        .into_owned();
                    out.push((rel, fs::read(&path).unwrap()));
                }
            }
        }
        let base = self.dir.path().join(dir);
        let mut out = Vec::new();
        walk(&base, &base, &mut out);
        out.sort();
        out
    }

    /// Runs `shipit -C PROJECT ARGS...` with no SHIPIT__ variables from the test's environment.
    pub fn shipit(&self, args: &[&str]) -> Run {
        self.shipit_env(args, &[])
    }

    pub fn shipit_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_shipit"));
        cmd.arg("-C").arg(self.dir.path()).args(args);
        for (name, _) in std::env::vars() {
            if name.starts_with("SHIPIT") {
                cmd.env_remove(name);
            }
        }
        cmd.env("NO_COLOR", "1");
        cmd.envs(env.iter().copied());
        let output = cmd.output().expect("run shipit");
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}
