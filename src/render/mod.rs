//! Rendering: a validated configuration in, the complete set of generated
//! files out, in memory. Nothing touches the disk here; [`write`] does that.

pub mod ci;
pub mod context;
pub mod escape;
pub mod format;
mod templates;
pub mod write;

use askama::Template;

use crate::config::Loaded;
use crate::error::Error;

pub use context::Ctx;
use templates as t;

/// Where `shipit render ENV` writes, relative to the project.
pub const GENERATED_DIR: &str = "generated";

/// The pseudo-environment whose files are the CI workflows.
pub const CI_TARGET: &str = "ci";

/// One generated file: its path relative to the output root, and its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artifact {
    pub path: String,
    pub contents: String,
}

/// One template's file, at its `OUTPUT`.
fn file<T: t::File>(template: T) -> Result<Artifact, Error> {
    artifact(T::OUTPUT, template.render())
}

fn artifact(path: &str, rendered: askama::Result<String>) -> Result<Artifact, Error> {
    let mut contents = rendered.map_err(|e| Error::Template {
        template: path.to_string(),
        message: e.to_string(),
    })?;
    let trimmed = contents.trim_end().len();
    contents.truncate(trimmed);
    contents.push('\n');
    let artifact = Artifact {
        path: path.to_string(),
        contents,
    };
    verify(&artifact)?;
    Ok(artifact)
}

/// Parses structured output back before anything is written: a template that
/// produced invalid YAML or JSON is a shipit bug and must never reach the disk.
fn verify(artifact: &Artifact) -> Result<(), Error> {
    let bug = |message: String| Error::GeneratedInvalid {
        path: artifact.path.clone(),
        message,
    };
    if artifact.path.ends_with(".yml") || artifact.path.ends_with(".yaml") {
        // Every document (a Deployment file holds one per role).
        for doc in yaml_serde::Deserializer::from_str(&artifact.contents) {
            <yaml_serde::Value as serde::Deserialize>::deserialize(doc)
                .map_err(|e| bug(e.to_string()))?;
        }
    } else if artifact.path.ends_with(".json") {
        serde_json::from_str::<serde_json::Value>(&artifact.contents)
            .map_err(|e| bug(e.to_string()))?;
    }
    Ok(())
}

/// Every file of one environment, in a fixed order.
pub fn environment(loaded: &Loaded) -> Result<Vec<Artifact>, Error> {
    let c = Ctx::new(loaded);
    let c = &c;
    let mut out = Vec::new();
    // The project's own Dockerfile, or a prebuilt image: shipit renders none.
    if c.renders_dockerfile {
        out.push(file(t::Dockerfile { c })?);
    }
    // Prebuilt mode packages a static Rust binary: nothing else has one.
    if c.renders_prebuilt {
        out.push(file(t::DockerfilePrebuilt { c })?);
    }
    out.extend([
        file(t::DockerIgnore { c })?,
        file(t::Compose { c })?,
        file(t::Nginx { c })?,
        file(t::Haproxy { c })?,
    ]);
    // Cluster-level objects an administrator applies once: not in the kustomization.
    let mut cluster = vec![file(t::Namespace { c })?];
    let mut k8s = vec![
        file(t::ServiceAccount { c })?,
        file(t::ConfigMap { c })?,
        file(t::Deployment { c })?,
        file(t::Service { c })?,
    ];
    if c.ingress {
        k8s.push(file(t::ResponseHeaders { c })?);
        k8s.push(file(t::Ingress { c, metrics: false })?);
        k8s.push(artifact(
            t::Ingress::METRICS_OUTPUT,
            t::Ingress { c, metrics: true }.render(),
        )?);
        cluster.push(file(t::IngressController { c })?);
    }
    if c.autoscaling {
        k8s.push(file(t::Hpa { c })?);
    }
    if c.pdb {
        k8s.push(file(t::Pdb { c })?);
    }
    if c.network_policy {
        k8s.push(file(t::NetworkPolicyDefaultDeny { c })?);
        k8s.push(file(t::NetworkPolicy { c })?);
    }
    let files: Vec<String> = k8s
        .iter()
        .map(|a| a.path.trim_start_matches("k8s/").to_string())
        .collect();
    k8s.push(file(t::Kustomization { c, files: &files })?);
    out.extend(k8s);
    out.extend(cluster);
    // Only where something runs it: the compose stack's Prometheus.
    if c.prometheus {
        out.push(file(t::PrometheusConfig { c })?);
        out.push(file(t::PrometheusAlerts { c })?);
    }
    if c.alertmanager {
        out.push(file(t::AlertmanagerConfig { c })?);
    }
    if c.grafana {
        out.push(file(t::GrafanaDatasource { c })?);
        out.push(file(t::GrafanaDashboards { c })?);
        out.push(file(t::GrafanaDashboard { c })?);
    }
    Ok(out)
}

/// The CI workflows, rendered from the shared base configuration.
/// `deploys`: each of `ci.deploy_environments`, loaded (their hosts and secrets shape the deploy jobs).
pub fn ci_workflows(
    loaded: &Loaded,
    environments: Vec<String>,
    deploys: &[Loaded],
) -> Result<Vec<Artifact>, Error> {
    let missing: Vec<&String> = loaded
        .config
        .ci
        .deploy_environments
        .iter()
        .filter(|e| !environments.contains(e))
        .collect();
    if !missing.is_empty() {
        return Err(Error::Usage(format!(
            "ci.deploy_environments names {} without a file in environments/; known environments: {}",
            missing
                .iter()
                .map(|m| format!("\"{m}\""))
                .collect::<Vec<_>>()
                .join(", "),
            environments.join(", ")
        )));
    }
    let c = ci::CiCtx::new(loaded, environments, deploys);
    let c = &c;
    Ok(vec![
        file(t::CiWorkflow { c })?,
        file(t::ReleaseWorkflow { c })?,
        file(t::DeployWorkflow { c })?,
        file(t::Dependabot { c })?,
        file(t::RootDockerIgnore { c })?,
        file(t::TrivyIgnore { c })?,
        file(t::TrivyRegistries { c })?,
    ])
}

/// The deploy gateway's haproxy.cfg: the same template as
/// generated/ENV/haproxy.cfg, with the release's replicas as servers.
pub fn gateway_config(c: &Ctx) -> Result<String, Error> {
    Ok(file(t::Haproxy { c })?.contents)
}
