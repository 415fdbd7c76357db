//! Snapshots of every generated file, per environment (version masked).

use crate::harness::{Project, repo_version};

fn snapshot_of(project: &Project, dir: &str) -> String {
    let version = repo_version();
    project
        .tree(dir)
        .into_iter()
        .map(|(path, bytes)| {
            let text = String::from_utf8(bytes)
                .unwrap()
                .replace(&version, "[VERSION]");
            format!("==> {path} <==\n{text}")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn generated_files_per_environment() {
    let project = Project::from_repo();
    project.shipit(&["render", "--all"]).success();
    for env in ["development", "staging", "production"] {
        insta::assert_snapshot!(env, snapshot_of(&project, &format!("generated/{env}")));
    }
    insta::assert_snapshot!("ci", snapshot_of(&project, ".github/workflows"));
}
