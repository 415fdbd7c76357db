//! One template struct per generated file; `templates/` mirrors the output tree:
//! `templates/env/PATH` renders to `generated/ENV/PATH`, `templates/ci/PATH` to `PATH`.
//! `OUTPUT` is each file's path relative to its output root.

use askama::Template;

use super::ci::CiCtx;
use super::context::Ctx;

#[derive(Template)]
#[template(path = "env/Dockerfile", escape = "none")]
pub struct Dockerfile<'a> {
    pub c: &'a Ctx,
}

impl Dockerfile<'_> {
    pub const OUTPUT: &'static str = "Dockerfile";
}

#[derive(Template)]
#[template(path = "env/Dockerfile.prebuilt", escape = "none")]
pub struct DockerfilePrebuilt<'a> {
    pub c: &'a Ctx,
}

impl DockerfilePrebuilt<'_> {
    pub const OUTPUT: &'static str = "Dockerfile.prebuilt";
}

#[derive(Template)]
#[template(path = "env/.dockerignore", escape = "none")]
pub struct DockerIgnore<'a> {
    pub c: &'a Ctx,
}

impl DockerIgnore<'_> {
    pub const OUTPUT: &'static str = ".dockerignore";
}

#[derive(Template)]
#[template(path = "env/docker-compose.yml", escape = "none")]
pub struct Compose<'a> {
    pub c: &'a Ctx,
}

impl Compose<'_> {
    pub const OUTPUT: &'static str = "docker-compose.yml";
}

#[derive(Template)]
#[template(path = "env/nginx.conf", escape = "none")]
pub struct Nginx<'a> {
    pub c: &'a Ctx,
}

impl Nginx<'_> {
    pub const OUTPUT: &'static str = "nginx.conf";
}

#[derive(Template)]
#[template(path = "env/haproxy.cfg", escape = "none")]
pub struct Haproxy<'a> {
    pub c: &'a Ctx,
}

impl Haproxy<'_> {
    pub const OUTPUT: &'static str = "haproxy.cfg";
}

#[derive(Template)]
#[template(path = "env/k8s/cluster/namespace.yaml", escape = "none")]
pub struct Namespace<'a> {
    pub c: &'a Ctx,
}

impl Namespace<'_> {
    pub const OUTPUT: &'static str = "k8s/cluster/namespace.yaml";
}

#[derive(Template)]
#[template(
    path = "env/k8s/cluster/ingress-nginx-controller.yaml",
    escape = "none"
)]
pub struct IngressController<'a> {
    pub c: &'a Ctx,
}

impl IngressController<'_> {
    pub const OUTPUT: &'static str = "k8s/cluster/ingress-nginx-controller.yaml";
}

#[derive(Template)]
#[template(path = "env/k8s/response-headers.yaml", escape = "none")]
pub struct ResponseHeaders<'a> {
    pub c: &'a Ctx,
}

impl ResponseHeaders<'_> {
    pub const OUTPUT: &'static str = "k8s/response-headers.yaml";
}

#[derive(Template)]
#[template(path = "env/k8s/serviceaccount.yaml", escape = "none")]
pub struct ServiceAccount<'a> {
    pub c: &'a Ctx,
}

impl ServiceAccount<'_> {
    pub const OUTPUT: &'static str = "k8s/serviceaccount.yaml";
}

#[derive(Template)]
#[template(path = "env/k8s/configmap.yaml", escape = "none")]
pub struct ConfigMap<'a> {
    pub c: &'a Ctx,
}

impl ConfigMap<'_> {
    pub const OUTPUT: &'static str = "k8s/configmap.yaml";
}

#[derive(Template)]
#[template(path = "env/k8s/deployment.yaml", escape = "none")]
pub struct Deployment<'a> {
    pub c: &'a Ctx,
}

impl Deployment<'_> {
    pub const OUTPUT: &'static str = "k8s/deployment.yaml";
}

#[derive(Template)]
#[template(path = "env/k8s/service.yaml", escape = "none")]
pub struct Service<'a> {
    pub c: &'a Ctx,
}

impl Service<'_> {
    pub const OUTPUT: &'static str = "k8s/service.yaml";
}

#[derive(Template)]
#[template(path = "env/k8s/ingress.yaml", escape = "none")]
pub struct Ingress<'a> {
    pub c: &'a Ctx,
    /// The metrics path's own Ingress (allow-listed), else the service's.
    pub metrics: bool,
}

impl Ingress<'_> {
    pub const OUTPUT: &'static str = "k8s/ingress.yaml";
    pub const METRICS_OUTPUT: &'static str = "k8s/ingress-metrics.yaml";
}

#[derive(Template)]
#[template(path = "env/k8s/hpa.yaml", escape = "none")]
pub struct Hpa<'a> {
    pub c: &'a Ctx,
}

impl Hpa<'_> {
    pub const OUTPUT: &'static str = "k8s/hpa.yaml";
}

#[derive(Template)]
#[template(path = "env/k8s/pdb.yaml", escape = "none")]
pub struct Pdb<'a> {
    pub c: &'a Ctx,
}

impl Pdb<'_> {
    pub const OUTPUT: &'static str = "k8s/pdb.yaml";
}

#[derive(Template)]
#[template(path = "env/k8s/networkpolicy-default-deny.yaml", escape = "none")]
pub struct NetworkPolicyDefaultDeny<'a> {
    pub c: &'a Ctx,
}

impl NetworkPolicyDefaultDeny<'_> {
    pub const OUTPUT: &'static str = "k8s/networkpolicy-default-deny.yaml";
}

#[derive(Template)]
#[template(path = "env/k8s/networkpolicy.yaml", escape = "none")]
pub struct NetworkPolicy<'a> {
    pub c: &'a Ctx,
}

impl NetworkPolicy<'_> {
    pub const OUTPUT: &'static str = "k8s/networkpolicy.yaml";
}

#[derive(Template)]
#[template(path = "env/prometheus/prometheus.yml", escape = "none")]
pub struct PrometheusConfig<'a> {
    pub c: &'a Ctx,
}

impl PrometheusConfig<'_> {
    pub const OUTPUT: &'static str = "prometheus/prometheus.yml";
}

#[derive(Template)]
#[template(path = "env/prometheus/alerts.yml", escape = "none")]
pub struct PrometheusAlerts<'a> {
    pub c: &'a Ctx,
}

impl PrometheusAlerts<'_> {
    pub const OUTPUT: &'static str = "prometheus/alerts.yml";
}

#[derive(Template)]
#[template(
    path = "env/grafana/provisioning/datasources/prometheus.yml",
    escape = "none"
)]
pub struct GrafanaDatasource<'a> {
    pub c: &'a Ctx,
}

impl GrafanaDatasource<'_> {
    pub const OUTPUT: &'static str = "grafana/provisioning/datasources/prometheus.yml";
}

#[derive(Template)]
#[template(
    path = "env/grafana/provisioning/dashboards/dashboards.yml",
    escape = "none"
)]
pub struct GrafanaDashboards<'a> {
    pub c: &'a Ctx,
}

impl GrafanaDashboards<'_> {
    pub const OUTPUT: &'static str = "grafana/provisioning/dashboards/dashboards.yml";
}

#[derive(Template)]
#[template(path = "env/grafana/dashboards/calculator.json", escape = "none")]
pub struct GrafanaDashboard<'a> {
    pub c: &'a Ctx,
}

impl GrafanaDashboard<'_> {
    pub const OUTPUT: &'static str = "grafana/dashboards/calculator.json";
}

#[derive(Template)]
#[template(path = "env/k8s/kustomization.yaml", escape = "none")]
pub struct Kustomization<'a> {
    pub c: &'a Ctx,
    pub files: &'a [String],
}

impl Kustomization<'_> {
    pub const OUTPUT: &'static str = "k8s/kustomization.yaml";
}

#[derive(Template)]
#[template(path = "ci/.github/workflows/ci.yml", escape = "none")]
pub struct CiWorkflow<'a> {
    pub c: &'a CiCtx,
}

impl CiWorkflow<'_> {
    pub const OUTPUT: &'static str = ".github/workflows/ci.yml";
}

#[derive(Template)]
#[template(path = "ci/.github/workflows/release.yml", escape = "none")]
pub struct ReleaseWorkflow<'a> {
    pub c: &'a CiCtx,
}

impl ReleaseWorkflow<'_> {
    pub const OUTPUT: &'static str = ".github/workflows/release.yml";
}

#[derive(Template)]
#[template(path = "ci/.github/workflows/deploy.yml", escape = "none")]
pub struct DeployWorkflow<'a> {
    pub c: &'a CiCtx,
}

impl DeployWorkflow<'_> {
    pub const OUTPUT: &'static str = ".github/workflows/deploy.yml";
}

#[derive(Template)]
#[template(path = "ci/.github/dependabot.yml", escape = "none")]
pub struct Dependabot<'a> {
    pub c: &'a CiCtx,
}

impl Dependabot<'_> {
    pub const OUTPUT: &'static str = ".github/dependabot.yml";
}

#[derive(Template)]
#[template(path = "ci/.dockerignore", escape = "none")]
pub struct RootDockerIgnore<'a> {
    pub c: &'a CiCtx,
}

impl RootDockerIgnore<'_> {
    pub const OUTPUT: &'static str = ".dockerignore";
}

#[derive(Template)]
#[template(path = "ci/.trivyignore.yaml", escape = "none")]
pub struct TrivyIgnore<'a> {
    pub c: &'a CiCtx,
}

impl TrivyIgnore<'_> {
    pub const OUTPUT: &'static str = ".trivyignore.yaml";
}

#[derive(Template)]
#[template(path = "ci/.trivy/registries.yaml", escape = "none")]
pub struct TrivyRegistries<'a> {
    pub c: &'a CiCtx,
}

impl TrivyRegistries<'_> {
    pub const OUTPUT: &'static str = ".trivy/registries.yaml";
}
