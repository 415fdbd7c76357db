//! One template struct per generated file; `templates/` mirrors the output tree:
//! `templates/env/PATH` renders to `generated/ENV/PATH`, `templates/ci/PATH` to `PATH`.
//! `OUTPUT` is each file's path relative to its output root.

use askama::Template;

use super::ci::CiCtx;
use super::context::Ctx;

/// A template that renders one generated file, at `OUTPUT` (relative to
/// its output root).
pub trait File: Template {
    const OUTPUT: &'static str;
}

/// Template structs that render from one context: the name, the template
/// (below `templates/`), the context's type, and the path it renders to
/// (`OUTPUT`, relative to its output root).
macro_rules! templates {
    ($ctx:ty: $($name:ident $path:literal => $output:literal;)+) => {$(
        #[derive(Template)]
        #[template(path = $path, escape = "none")]
        pub struct $name<'a> {
            pub c: &'a $ctx,
        }

        impl File for $name<'_> {
            const OUTPUT: &'static str = $output;
        }
    )+};
}

templates! {
    Ctx:
    Dockerfile "env/Dockerfile" => "Dockerfile";
    DockerfilePrebuilt "env/Dockerfile.prebuilt" => "Dockerfile.prebuilt";
    DockerIgnore "env/.dockerignore" => ".dockerignore";
    Compose "env/docker-compose.yml" => "docker-compose.yml";
    Nginx "env/nginx.conf" => "nginx.conf";
    Haproxy "env/haproxy.cfg" => "haproxy.cfg";
    Namespace "env/k8s/cluster/namespace.yaml" => "k8s/cluster/namespace.yaml";
    IngressController "env/k8s/cluster/ingress-nginx-controller.yaml" => "k8s/cluster/ingress-nginx-controller.yaml";
    ResponseHeaders "env/k8s/response-headers.yaml" => "k8s/response-headers.yaml";
    ServiceAccount "env/k8s/serviceaccount.yaml" => "k8s/serviceaccount.yaml";
    ConfigMap "env/k8s/configmap.yaml" => "k8s/configmap.yaml";
    Deployment "env/k8s/deployment.yaml" => "k8s/deployment.yaml";
    Service "env/k8s/service.yaml" => "k8s/service.yaml";
    Hpa "env/k8s/hpa.yaml" => "k8s/hpa.yaml";
    Pdb "env/k8s/pdb.yaml" => "k8s/pdb.yaml";
    NetworkPolicyDefaultDeny "env/k8s/networkpolicy-default-deny.yaml" => "k8s/networkpolicy-default-deny.yaml";
    NetworkPolicy "env/k8s/networkpolicy.yaml" => "k8s/networkpolicy.yaml";
    PrometheusConfig "env/prometheus/prometheus.yml" => "prometheus/prometheus.yml";
    PrometheusAlerts "env/prometheus/alerts.yml" => "prometheus/alerts.yml";
    AlertmanagerConfig "env/alertmanager/alertmanager.yml" => "alertmanager/alertmanager.yml";
    GrafanaDatasource "env/grafana/provisioning/datasources/prometheus.yml" => "grafana/provisioning/datasources/prometheus.yml";
    GrafanaDashboards "env/grafana/provisioning/dashboards/dashboards.yml" => "grafana/provisioning/dashboards/dashboards.yml";
    GrafanaDashboard "env/grafana/dashboards/calculator.json" => "grafana/dashboards/calculator.json";
}

templates! {
    CiCtx:
    CiWorkflow "ci/.github/workflows/ci.yml" => ".github/workflows/ci.yml";
    ReleaseWorkflow "ci/.github/workflows/release.yml" => ".github/workflows/release.yml";
    DeployWorkflow "ci/.github/workflows/deploy.yml" => ".github/workflows/deploy.yml";
    Dependabot "ci/.github/dependabot.yml" => ".github/dependabot.yml";
    RootDockerIgnore "ci/.dockerignore" => ".dockerignore";
    TrivyIgnore "ci/.trivyignore.yaml" => ".trivyignore.yaml";
    TrivyRegistries "ci/.trivy/registries.yaml" => ".trivy/registries.yaml";
}

#[derive(Template)]
#[template(path = "env/k8s/ingress.yaml", escape = "none")]
pub struct Ingress<'a> {
    pub c: &'a Ctx,
    /// The metrics path's own Ingress (allow-listed), else the service's.
    pub metrics: bool,
}

impl Ingress<'_> {
    pub const METRICS_OUTPUT: &'static str = "k8s/ingress-metrics.yaml";
}

impl File for Ingress<'_> {
    const OUTPUT: &'static str = "k8s/ingress.yaml";
}

#[derive(Template)]
#[template(path = "env/k8s/kustomization.yaml", escape = "none")]
pub struct Kustomization<'a> {
    pub c: &'a Ctx,
    pub files: &'a [String],
}

impl File for Kustomization<'_> {
    const OUTPUT: &'static str = "k8s/kustomization.yaml";
}
