//! The objects a deploy applies: the environment rendered in memory with the
//! image pinned by its digest (`generated/` stays as committed), as one JSON
//! `List` for kubectl, and the revision's annotations on the pod template.

use serde_json::{Value, json};

use crate::config::Loaded;
use crate::error::Error;
use crate::render;

/// Pod-template annotations: they travel with each revision (its
/// ReplicaSet), so `history` and `rollback --to VERSION` read them back.
pub const VERSION: &str = "shipit.dev/version";
pub const IMAGE: &str = "shipit.dev/image";
pub const DEPLOYED_BY: &str = "shipit.dev/deployed-by";
pub const DEPLOYED_AT: &str = "shipit.dev/deployed-at";

/// The label on a role's Deployment and pods (`[roles.NAME]`): its name.
pub const ROLE_LABEL: &str = "shipit.dev/role";

/// Who and when, for the annotations.
pub struct Stamp {
    pub by: String,
    pub at: i64,
}

/// The environment's namespaced objects (what `kustomization.yaml` lists;
/// `k8s/cluster/` is the administrator's), rendered with `digest` pinned.
pub fn objects(loaded: &Loaded, digest: &str, stamp: &Stamp) -> Result<Vec<Value>, Error> {
    let mut loaded = loaded.clone();
    loaded.config.image.digest = digest.to_string();
    let image = image_reference(&loaded);
    let mut objects = Vec::new();
    for artifact in render::environment(&loaded)? {
        let Some(name) = artifact.path.strip_prefix("k8s/") else {
            continue;
        };
        if name.contains('/') || name == "kustomization.yaml" {
            continue;
        }
        for doc in yaml_serde::Deserializer::from_str(&artifact.contents) {
            let value: Value =
                serde::Deserialize::deserialize(doc).map_err(|e| Error::GeneratedInvalid {
                    path: artifact.path.clone(),
                    message: e.to_string(),
                })?;
            if !value.is_null() {
                objects.push(value);
            }
        }
    }
    pin_config(&mut objects);
    for object in &mut objects {
        if object["kind"] == "Deployment" {
            let annotations = &mut object["spec"]["template"]["metadata"]["annotations"];
            if !annotations.is_object() {
                *annotations = json!({});
            }
            annotations[VERSION] = json!(loaded.version);
            annotations[IMAGE] = json!(image);
            annotations[DEPLOYED_BY] = json!(stamp.by);
            annotations[DEPLOYED_AT] = json!(crate::clock::rfc3339(stamp.at));
        }
    }
    Ok(objects)
}

/// Each revision gets its own ConfigMap, named by its content
/// (`APP-config-HASH`), and the Deployment refers to that one: a revision's
/// settings travel with it, so an undo restores them too (a shared
/// ConfigMap would keep the failed release's settings). Old ones are pruned
/// once no kept revision refers to them (`prune_configs`).
fn pin_config(objects: &mut [Value]) {
    // The ConfigMaps the Deployment reads its environment from (others,
    // such as the Ingress controller's headers, keep their names).
    let referenced: Vec<String> = objects
        .iter()
        .filter(|o| o["kind"] == "Deployment")
        .flat_map(config_maps_of)
        .map(str::to_string)
        .collect();
    let mut renamed = Vec::new();
    for o in objects.iter_mut() {
        let name = o["metadata"]["name"].as_str().unwrap_or("").to_string();
        if o["kind"] == "ConfigMap" && referenced.contains(&name) {
            let content = serde_json::to_string(&o["data"]).unwrap_or_default();
            let pinned = format!("{name}-{}", &fnv(content.as_bytes())[..10]);
            o["metadata"]["name"] = json!(pinned);
            o["metadata"]["labels"][CONFIG_LABEL] = json!(name);
            renamed.push((name, pinned));
        }
    }
    for o in objects.iter_mut() {
        if o["kind"] != "Deployment" {
            continue;
        }
        let spec = &mut o["spec"]["template"]["spec"];
        for c in spec["containers"].as_array_mut().into_iter().flatten() {
            for from in c["envFrom"].as_array_mut().into_iter().flatten() {
                if let Some(name) = from["configMapRef"]["name"].as_str()
                    && let Some((_, pinned)) = renamed.iter().find(|(n, _)| n == name)
                {
                    from["configMapRef"]["name"] = json!(pinned);
                }
            }
        }
    }
}

/// The label that marks a revision's ConfigMap with the name it was rendered as.
pub const CONFIG_LABEL: &str = "shipit.dev/config";

/// FNV-1a, 64 bits, as hex: a stable name for content.
fn fnv(bytes: &[u8]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
}

/// The image as the manifests reference it: `REPO:TAG@sha256:...` once pinned.
pub fn image_reference(loaded: &Loaded) -> String {
    let reference = loaded.image_ref();
    let digest = &loaded.config.image.digest;
    if digest.is_empty() || reference.contains('@') {
        reference
    } else {
        format!("{reference}@{digest}")
    }
}

/// The ConfigMaps a Deployment's (or ReplicaSet's) containers take their
/// environment from (`envFrom`).
fn config_maps_of(owner: &Value) -> impl Iterator<Item = &str> {
    owner["spec"]["template"]["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|c| c["envFrom"].as_array().into_iter().flatten())
        .filter_map(|from| from["configMapRef"]["name"].as_str())
}

/// ConfigMaps of past revisions that no kept ReplicaSet (the service's or
/// a role's, `APP-ROLE`) refers to any more.
pub fn stale_configs(config_maps: &Value, replica_sets: &Value, app: &str) -> Vec<String> {
    let mut used = std::collections::BTreeSet::new();
    for rs in replica_sets["items"].as_array().into_iter().flatten() {
        let owned = rs["metadata"]["ownerReferences"]
            .as_array()
            .is_some_and(|o| {
                o.iter().any(|r| {
                    r["kind"] == "Deployment"
                        && r["name"]
                            .as_str()
                            .is_some_and(|n| n == app || n.starts_with(&format!("{app}-")))
                })
            });
        if !owned {
            continue;
        }
        used.extend(config_maps_of(rs));
    }
    config_maps["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["metadata"]["labels"][CONFIG_LABEL].is_string())
        .filter_map(|c| c["metadata"]["name"].as_str())
        .filter(|n| !used.contains(n))
        .map(str::to_string)
        .collect()
}

/// The objects as one `List`, kubectl's input.
pub fn list(objects: &[Value]) -> Vec<u8> {
    serde_json::to_vec(&json!({"apiVersion": "v1", "kind": "List", "items": objects}))
        .unwrap_or_default()
}

/// `Kind/name` of each object, for plans and messages.
pub fn names(objects: &[Value]) -> Vec<String> {
    objects
        .iter()
        .map(|o| {
            format!(
                "{}/{}",
                o["kind"].as_str().unwrap_or("?"),
                o["metadata"]["name"].as_str().unwrap_or("?")
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_revision_refers_to_a_config_map_named_by_its_content() {
        let objects = |value: &str| {
            let mut o = vec![
                json!({"kind": "ConfigMap", "metadata": {"name": "web-config", "labels": {}}, "data": {"MODE": value}}),
                json!({"kind": "ConfigMap", "metadata": {"name": "web-headers", "labels": {}}, "data": {"X-A": "b"}}),
                json!({"kind": "Deployment", "metadata": {"name": "web"}, "spec": {"template": {"spec": {"containers": [
                    {"name": "web", "envFrom": [{"configMapRef": {"name": "web-config"}}]}
                ]}}}}),
            ];
            pin_config(&mut o);
            o
        };
        let a = objects("a");
        let name = a[0]["metadata"]["name"].as_str().unwrap();
        assert!(name.starts_with("web-config-") && name.len() == "web-config-".len() + 10);
        assert_eq!(
            a[1]["metadata"]["name"], "web-headers",
            "not the Deployment's: unchanged"
        );
        assert_eq!(
            a[2]["spec"]["template"]["spec"]["containers"][0]["envFrom"][0]["configMapRef"]["name"],
            name
        );
        assert_eq!(
            objects("a")[0]["metadata"]["name"],
            name,
            "same content, same name"
        );
        assert_ne!(objects("b")[0]["metadata"]["name"], name);

        let rs = json!({"items": [{"metadata": {"ownerReferences": [{"kind": "Deployment", "name": "web"}]},
            "spec": {"template": {"spec": {"containers": [{"envFrom": [{"configMapRef": {"name": name}}]}]}}}}]});
        let maps = json!({"items": [
            {"metadata": {"name": name, "labels": {CONFIG_LABEL: "web-config"}}},
            {"metadata": {"name": "web-config-0123456789", "labels": {CONFIG_LABEL: "web-config"}}},
            {"metadata": {"name": "not-ours", "labels": {}}}
        ]});
        assert_eq!(stale_configs(&maps, &rs, "web"), ["web-config-0123456789"]);
    }
}
