//! Runs a rendered GitHub Actions job's `run:` steps the way a runner does:
//! `bash --noprofile --norc -eo pipefail`, the workflow's, job's and step's
//! `env:` with `${{ ... }}` expressions filled in from a table (an unknown
//! expression fails the test), `$GITHUB_ENV` and `$GITHUB_PATH` carried to
//! the next steps, `if:` conditions (`always()`, `failure()`, `success()`,
//! `X == 'Y'`, joined by `&&`), and the step outcome. `uses:` steps are the
//! runner's setup (checkout, toolchain, cache) and are left out; the steps
//! named in `replaced` are too (the test supplies what they make).
//!
//! Every step runs in a private mount namespace where `~/.ssh` (ssh reads the
//! passwd home, not `$HOME`) is a directory of this run, as on a fresh runner.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

pub(super) struct Runner {
    pub(super) workspace: PathBuf,
    pub(super) temp: tempfile::TempDir,
    /// `~/.ssh` as the steps see it.
    pub(super) ssh_dir: PathBuf,
    /// Expression (`secrets.X`, `github.actor`, ...) to value.
    pub(super) context: BTreeMap<String, String>,
    /// `GITHUB_*` and runner variables every step gets.
    pub(super) base_env: BTreeMap<String, String>,
    /// Directories put first on PATH (`$GITHUB_PATH`, and the test's own).
    pub(super) path: Vec<String>,
    /// What `$GITHUB_ENV` set so far.
    pub(super) env: BTreeMap<String, String>,
    made_ssh_home: bool,
}

#[derive(Debug)]
pub(super) struct Step {
    pub(super) id: String,
    pub(super) name: String,
    /// `success`, `failure` or `skipped`.
    pub(super) outcome: &'static str,
    pub(super) output: String,
}

pub(super) struct Job {
    pub(super) steps: Vec<Step>,
}

impl Job {
    pub(super) fn step(&self, id: &str) -> &Step {
        self.steps
            .iter()
            .find(|s| s.id == id)
            .unwrap_or_else(|| panic!("no step {id}: {:?}", self.names()))
    }

    /// The first step whose name contains `text`.
    pub(super) fn named(&self, text: &str) -> &Step {
        self.steps
            .iter()
            .find(|s| s.name.contains(text))
            .unwrap_or_else(|| panic!("no step named like {text:?}: {:?}", self.names()))
    }

    pub(super) fn succeeded(&self) -> bool {
        self.steps.iter().all(|s| s.outcome != "failure")
    }

    fn names(&self) -> Vec<(String, &'static str)> {
        self.steps
            .iter()
            .map(|s| (s.name.clone(), s.outcome))
            .collect()
    }

    pub(super) fn log(&self) -> String {
        self.steps
            .iter()
            .map(|s| format!("--- {} [{}]\n{}", s.name, s.outcome, s.output))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Runner {
    pub(super) fn new(workspace: &Path, context: BTreeMap<String, String>) -> Runner {
        let temp = tempfile::tempdir().unwrap();
        let ssh_dir = temp.path().join("home-ssh");
        std::fs::create_dir(&ssh_dir).unwrap();
        let home_ssh = Path::new("/root/.ssh");
        let made_ssh_home = !home_ssh.exists();
        if made_ssh_home {
            std::fs::create_dir_all(home_ssh).unwrap();
        }
        Runner {
            workspace: workspace.to_path_buf(),
            temp,
            ssh_dir,
            context,
            base_env: BTreeMap::new(),
            path: Vec::new(),
            env: BTreeMap::new(),
            made_ssh_home,
        }
    }

    /// Fills in every `${{ expr }}`; an expression the table lacks fails the test.
    pub(super) fn expand(&self, text: &str) -> String {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${{") {
            out.push_str(&rest[..start]);
            let end = rest[start..].find("}}").expect("unclosed ${{") + start;
            let expr = rest[start + 3..end].trim();
            let value = self
                .context
                .get(expr)
                .unwrap_or_else(|| panic!("the test has no value for ${{{{ {expr} }}}}"));
            out.push_str(value);
            rest = &rest[end + 2..];
        }
        out.push_str(rest);
        out
    }

    fn condition(&self, text: Option<&str>, steps: &[Step]) -> bool {
        let failed = steps.iter().any(|s| s.outcome == "failure");
        let Some(text) = text else {
            return !failed;
        };
        let mut status_checked = false;
        let mut result = true;
        for term in text.split("&&").map(str::trim) {
            let value = match term {
                "always()" => {
                    status_checked = true;
                    true
                }
                "failure()" => {
                    status_checked = true;
                    failed
                }
                "success()" => {
                    status_checked = true;
                    !failed
                }
                _ => {
                    let (left, right) = term
                        .split_once("==")
                        .unwrap_or_else(|| panic!("the runner cannot evaluate {term:?}"));
                    let left = left.trim();
                    let right = right.trim().trim_matches('\'');
                    let actual = match left
                        .strip_prefix("steps.")
                        .and_then(|s| s.strip_suffix(".outcome"))
                    {
                        Some(id) => steps
                            .iter()
                            .find(|s| s.id == id)
                            .map_or("skipped", |s| s.outcome)
                            .to_string(),
                        None => self
                            .context
                            .get(left)
                            .unwrap_or_else(|| panic!("the test has no value for {left}"))
                            .clone(),
                    };
                    actual == right
                }
            };
            result &= value;
        }
        // Without a status function, `success()` is implied.
        result && (status_checked || !failed)
    }

    /// Runs `job` of `workflow`; `replaced`: step ids the test stands in for.
    pub(super) fn run_job(
        &mut self,
        workflow: &serde_json::Value,
        job: &str,
        replaced: &[&str],
    ) -> Job {
        let spec = &workflow["jobs"][job];
        assert!(spec.is_object(), "no job {job}");
        let mut steps: Vec<Step> = Vec::new();
        if !self.condition(spec["if"].as_str(), &steps) {
            return Job { steps };
        }
        let mut shared: BTreeMap<String, String> = BTreeMap::new();
        for scope in [&workflow["env"], &spec["env"]] {
            if let Some(map) = scope.as_object() {
                for (k, v) in map {
                    shared.insert(k.clone(), self.expand(&scalar(v)));
                }
            }
        }
        let mut seen_replaced = Vec::new();
        for (i, step) in spec["steps"].as_array().unwrap().iter().enumerate() {
            if step.get("uses").is_some() {
                continue;
            }
            let id = step["id"].as_str().unwrap_or_default().to_string();
            let name = step["name"]
                .as_str()
                .map(String::from)
                .unwrap_or_else(|| scalar(&step["run"]));
            if replaced.contains(&id.as_str()) {
                seen_replaced.push(id);
                continue;
            }
            if !self.condition(step["if"].as_str(), &steps) {
                steps.push(Step {
                    id,
                    name,
                    outcome: "skipped",
                    output: String::new(),
                });
                continue;
            }
            let (outcome, output) = self.run_step(i, step, &shared);
            steps.push(Step {
                id,
                name,
                outcome,
                output,
            });
        }
        for id in replaced {
            assert!(
                seen_replaced.iter().any(|s| s == id),
                "job {job} has no step {id} to replace"
            );
        }
        Job { steps }
    }

    fn run_step(
        &mut self,
        index: usize,
        step: &serde_json::Value,
        shared: &BTreeMap<String, String>,
    ) -> (&'static str, String) {
        let env_file = self.temp.path().join(format!("env-{index}"));
        let path_file = self.temp.path().join(format!("path-{index}"));
        std::fs::write(&env_file, "").unwrap();
        std::fs::write(&path_file, "").unwrap();
        let mut env: BTreeMap<String, String> = self.base_env.clone();
        env.extend(self.env.clone());
        env.extend(shared.clone());
        if let Some(map) = step["env"].as_object() {
            for (k, v) in map {
                env.insert(k.clone(), self.expand(&scalar(v)));
            }
        }
        let system = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
        let mut path: Vec<String> = self.path.iter().rev().cloned().collect();
        path.push(system.into());
        env.insert("PATH".into(), path.join(":"));
        env.insert("HOME".into(), "/root".into());
        env.insert("GITHUB_ENV".into(), env_file.display().to_string());
        env.insert("GITHUB_PATH".into(), path_file.display().to_string());
        env.insert(
            "RUNNER_TEMP".into(),
            self.temp.path().join("runner-temp").display().to_string(),
        );
        std::fs::create_dir_all(self.temp.path().join("runner-temp")).unwrap();
        let script = self.expand(&scalar(&step["run"]));
        let output = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "--", "sh", "-c"])
            .arg("mount --bind \"$0\" /root/.ssh && exec bash --noprofile --norc -eo pipefail -c \"$1\"")
            .arg(&self.ssh_dir)
            .arg(&script)
            .env_clear()
            .envs(&env)
            .current_dir(&self.workspace)
            .output()
            .expect("unshare (util-linux)");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        // What the step asked the next ones to get.
        let written = std::fs::read_to_string(&env_file).unwrap();
        let mut lines = written.lines();
        while let Some(line) = lines.next() {
            if let Some((k, delimiter)) = line.split_once("<<") {
                let mut value = Vec::new();
                for l in lines.by_ref() {
                    if l == delimiter {
                        break;
                    }
                    value.push(l);
                }
                self.env.insert(k.to_string(), value.join("\n"));
            } else if let Some((k, v)) = line.split_once('=') {
                self.env.insert(k.to_string(), v.to_string());
            }
        }
        for line in std::fs::read_to_string(&path_file).unwrap().lines() {
            if !line.trim().is_empty() {
                self.path.push(line.trim().to_string());
            }
        }
        let outcome = if output.status.success() {
            "success"
        } else {
            "failure"
        };
        (outcome, text)
    }
}

impl Drop for Runner {
    fn drop(&mut self) {
        if let Some(pid) = self.env.get("SSH_AGENT_PID") {
            let _ = Command::new("kill")
                .arg(pid)
                .stderr(std::process::Stdio::null())
                .status();
        }
        if self.made_ssh_home {
            let _ = std::fs::remove_dir("/root/.ssh");
        }
    }
}

fn scalar(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}
