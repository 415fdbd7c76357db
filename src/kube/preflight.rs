//! Before anything changes: the context, the server and its version, the
//! namespace, the permissions the deploy needs and the image's digest -
//! every problem reported at once. The calls run side by side.

use serde::Serialize;
use serde_json::{Value, json};

use super::kubectl::{Kubectl, text};

/// Which cluster a run talks to: the kubeconfig context, the server's
/// version and the namespace (the preflight finds them; the plan and the
/// outcome carry them).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Cluster {
    pub context: String,
    pub server_version: String,
    pub namespace: String,
}

/// What the deploy needs to know of the cluster, and what is wrong.
#[derive(Debug, Serialize)]
pub struct Preflight {
    #[serde(flatten)]
    pub cluster: Cluster,
    /// The Deployment as it is now (`None`: the first deploy).
    #[serde(skip)]
    pub deployment: Option<Value>,
    pub digest: String,
    pub problems: Vec<String>,
    pub warnings: Vec<String>,
    /// How long the checks took (with the digest's lookup, when the caller sets it).
    pub ms: u64,
}

/// What to check.
pub struct Wanted<'a> {
    pub app: &'a str,
    /// `kubernetes.version`, as written and its minor version.
    pub version: &'a str,
    pub minor: u32,
    /// The objects the deploy applies (their kinds give the permissions).
    pub objects: &'a [Value],
    /// The Secret the manifests reference, if any (the operator creates it).
    pub secret: Option<String>,
    /// The image's digest, or why it could not be resolved.
    pub digest: Result<String, String>,
    /// A release command runs as a Job (its permissions are needed too).
    pub release_command: bool,
    /// The smoke suite reaches a new pod through `kubectl port-forward`.
    pub port_forward: bool,
}

pub fn check(kubectl: &Kubectl, configured_context: bool, wanted: &Wanted<'_>) -> Preflight {
    let start = std::time::Instant::now();
    let ns = kubectl.namespace.clone();
    let (context, version, namespace, rules, deployment, secret) = std::thread::scope(|s| {
        let context = s.spawn(|| match &kubectl.context {
            Some(name) => kubectl
                .run_global(&["config", "get-contexts", name, "-o", "name"])
                .map(|_| name.clone()),
            None => kubectl
                .run_global(&["config", "current-context"])
                .map(|t| t.trim().to_string()),
        });
        let version = s.spawn(|| kubectl.run_global(&["version", "-o", "json"]));
        let namespace = s.spawn(|| kubectl.run_global(&["get", "namespace", &ns, "-o", "name"]));
        let rules = s.spawn(|| {
            let review = json!({
                "apiVersion": "authorization.k8s.io/v1",
                "kind": "SelfSubjectRulesReview",
                "spec": {"namespace": ns},
            });
            kubectl.json(
                &["create", "-f", "-", "-o", "json"],
                Some(review.to_string().as_bytes()),
            )
        });
        let deployment = s.spawn(|| kubectl.get(&format!("deployment/{}", wanted.app)));
        let secret = s.spawn(|| {
            wanted
                .secret
                .as_ref()
                .map(|name| kubectl.exists(&format!("secret/{name}")))
        });
        (
            context.join().expect("context check"),
            version.join().expect("version check"),
            namespace.join().expect("namespace check"),
            rules.join().expect("permissions check"),
            deployment.join().expect("deployment read"),
            secret.join().expect("secret check"),
        )
    });
    let mut problems = Vec::new();
    let mut warnings = Vec::new();
    let context = match context {
        Ok(c) => c,
        Err(e) => {
            problems.push(if configured_context {
                format!("kubernetes.context: {}", e.message)
            } else {
                format!(
                    "no current kubeconfig context ({}): set kubernetes.context, or `kubectl config use-context NAME`",
                    e.message
                )
            });
            String::new()
        }
    };
    let mut server_version = String::new();
    let reachable = match version {
        Ok(text) => {
            let v: Value = serde_json::from_str(&text).unwrap_or_default();
            server_version = super::kubectl::text(&v, "/serverVersion/gitVersion").to_string();
            let minor: Option<u32> = v
                .pointer("/serverVersion/minor")
                .and_then(Value::as_str)
                .map(|m| m.trim_end_matches('+'))
                .and_then(|m| m.parse().ok());
            if minor.is_some_and(|m| m != wanted.minor) {
                problems.push(format!(
                    "the server is Kubernetes {server_version}, but the manifests are rendered for {} (kubernetes.version): set kubernetes.version = \"1.{}\" so the API versions match",
                    wanted.version,
                    minor.unwrap_or_default()
                ));
            }
            true
        }
        Err(e) => {
            problems.push(format!(
                "cannot reach the API server{}: {}",
                if context.is_empty() {
                    String::new()
                } else {
                    format!(" of context {context}")
                },
                e.message
            ));
            false
        }
    };
    if reachable {
        if let Err(e) = namespace {
            problems.push(format!(
                "namespace {ns}: {} (an administrator creates it: kubectl apply --server-side -f generated/ENV/k8s/cluster/namespace.yaml)",
                e.message
            ));
        }
        match rules {
            Ok(review) => {
                let missing = missing_permissions(
                    &review,
                    wanted.objects,
                    wanted.release_command,
                    wanted.port_forward,
                );
                if !missing.is_empty() {
                    problems.push(format!(
                        "missing permissions in namespace {ns}: {}",
                        missing.join(", ")
                    ));
                }
                if review.pointer("/status/incomplete") == Some(&Value::Bool(true)) {
                    warnings.push(
                        "the server could not list every permission (an authorizer that cannot enumerate): the server-side dry-run checks them".into(),
                    );
                }
            }
            Err(e) => warnings.push(format!(
                "cannot review the permissions ({}): the server-side dry-run checks them",
                e.message
            )),
        }
        let secret_name = wanted.secret.clone().unwrap_or_default();
        match &secret {
            Some(Ok(false)) => problems.push(format!(
                "Secret {secret_name} is missing in namespace {ns}: the manifests reference it for [secrets] (create it: kubectl create secret generic {secret_name} --from-literal=NAME=VALUE -n {ns})"
            )),
            Some(Err(e)) if e.message.to_lowercase().contains("forbidden") => problems.push(format!(
                "the deploy user may not `get secrets` in namespace {ns}: shipit needs it to check that Secret {secret_name} exists (it reads the server's table, never the values); grant get on secrets there"
            )),
            Some(Err(e)) => problems.push(format!("cannot check Secret {secret_name}: {}", e.message)),
            _ => {}
        }
        if let Err(e) = &deployment {
            problems.push(format!(
                "cannot read deployment/{}: {}",
                wanted.app, e.message
            ));
        }
    }
    let digest = match &wanted.digest {
        Ok(d) => d.clone(),
        Err(e) => {
            problems.push(e.clone());
            String::new()
        }
    };
    Preflight {
        cluster: Cluster {
            context,
            server_version,
            namespace: ns,
        },
        deployment: deployment.ok().flatten(),
        digest,
        problems,
        warnings,
        ms: start.elapsed().as_millis() as u64,
    }
}

/// `verb group/resource` the deploy needs and the review does not grant.
fn missing_permissions(
    review: &Value,
    objects: &[Value],
    release_command: bool,
    port_forward: bool,
) -> Vec<String> {
    let mut needed: Vec<(String, String, &str)> = Vec::new();
    for o in objects {
        let api = text(o, "/apiVersion");
        let group = api.rsplit_once('/').map_or("", |(g, _)| g).to_string();
        let resource = plural(text(o, "/kind"));
        for verb in ["get", "create", "patch"] {
            needed.push((group.clone(), resource.clone(), verb));
        }
    }
    for (group, resource, verbs) in [
        ("apps", "deployments", &["list", "watch"][..]),
        ("apps", "replicasets", &["list"][..]),
        ("", "pods", &["list"][..]),
        ("", "events", &["list"][..]),
        (
            "coordination.k8s.io",
            "leases",
            &["get", "create", "update", "patch", "delete"][..],
        ),
    ] {
        for verb in verbs {
            needed.push((group.into(), resource.into(), verb));
        }
    }
    // Roles: a failed first deploy deletes the role Deployments it created.
    if !super::roles::declared(objects).is_empty() {
        needed.push(("apps".into(), "deployments".into(), "delete"));
    }
    if release_command {
        for (group, resource, verbs) in [
            ("batch", "jobs", &["get", "create", "delete"][..]),
            ("", "pods", &["get", "list"][..]),
            ("", "pods/log", &["get"][..]),
        ] {
            for verb in verbs {
                needed.push((group.into(), resource.into(), verb));
            }
        }
    }
    if port_forward {
        needed.push(("".into(), "pods".into(), "get"));
        needed.push(("".into(), "pods/portforward".into(), "create"));
    }
    needed.sort();
    needed.dedup();
    let rules = review
        .pointer("/status/resourceRules")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let has = |list: &Value, want: &str| {
        list.as_array()
            .is_some_and(|l| l.iter().any(|v| v == "*" || v == want))
    };
    needed
        .into_iter()
        .filter(|(group, resource, verb)| {
            !rules.iter().any(|r| {
                has(&r["verbs"], verb)
                    && has(&r["apiGroups"], group)
                    && has(&r["resources"], resource)
                    && r["resourceNames"].as_array().is_none_or(|n| n.is_empty())
            })
        })
        .map(|(group, resource, verb)| {
            if group.is_empty() {
                format!("{verb} {resource}")
            } else {
                format!("{verb} {resource}.{group}")
            }
        })
        .collect()
}

/// The resource name of a kind, as RBAC names it.
fn plural(kind: &str) -> String {
    let lower = kind.to_ascii_lowercase();
    if lower.ends_with('s') {
        format!("{lower}es")
    } else if let Some(stem) = lower.strip_suffix('y') {
        format!("{stem}ies")
    } else {
        format!("{lower}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permissions_are_read_from_the_rules_review() {
        let objects = vec![
            json!({"apiVersion": "apps/v1", "kind": "Deployment"}),
            json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy"}),
            json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress"}),
        ];
        let all = json!({"status": {"resourceRules": [
            {"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}
        ]}});
        assert!(missing_permissions(&all, &objects, true, true).is_empty());
        let some = json!({"status": {"resourceRules": [
            {"verbs": ["get", "list", "watch", "create", "patch", "update", "delete"], "apiGroups": ["", "apps", "coordination.k8s.io"], "resources": ["*"]},
            {"verbs": ["get", "create"], "apiGroups": ["networking.k8s.io"], "resources": ["networkpolicies", "ingresses"]}
        ]}});
        assert_eq!(
            missing_permissions(&some, &objects, false, false),
            vec![
                "patch ingresses.networking.k8s.io",
                "patch networkpolicies.networking.k8s.io"
            ]
        );
        // Port-forwarding is a subresource: `*` grants it, `pods` does not.
        assert_eq!(
            missing_permissions(&some, &objects, false, true),
            missing_permissions(&some, &objects, false, false)
        );
        let named = json!({"status": {"resourceRules": [
            {"verbs": ["*"], "apiGroups": ["*"], "resources": ["deployments", "replicasets", "pods", "events", "leases", "networkpolicies", "ingresses"]}
        ]}});
        assert_eq!(
            missing_permissions(&named, &objects, false, true),
            vec!["create pods/portforward"]
        );
        assert!(missing_permissions(&named, &objects, false, false).is_empty());
        assert_eq!(plural("Ingress"), "ingresses");
        assert_eq!(plural("NetworkPolicy"), "networkpolicies");
        assert_eq!(
            plural("HorizontalPodAutoscaler"),
            "horizontalpodautoscalers"
        );
    }
}
