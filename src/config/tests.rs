//! Loading tests: layers, overrides and every validation rule, on throw-away projects.

use std::fs;

use super::*;

const BASE: &str =
    "[app]\nname = \"calculator\"\nversion_source = \"config\"\nversion = \"1.2.3\"\n";

fn project(base: &str, env: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    fs::create_dir_all(dir.path().join("environments")).unwrap();
    fs::write(dir.path().join("environments/base.toml"), base).unwrap();
    fs::write(dir.path().join("environments/test.toml"), env).unwrap();
    dir
}

fn load_env(env: &str) -> Result<Loaded, ConfigErrors> {
    let dir = project(BASE, env);
    load(dir.path(), Some("test"), &Overrides::default())
}

/// The problems of an invalid environment as (key, message) pairs.
fn problems(env: &str) -> Vec<(String, String)> {
    match load_env(env) {
        Ok(_) => panic!("expected problems for:\n{env}"),
        Err(e) => e
            .problems
            .iter()
            .map(|p| (p.key.clone(), p.message.clone()))
            .collect(),
    }
}

fn keys(env: &str) -> Vec<String> {
    problems(env).into_iter().map(|(k, _)| k).collect()
}

#[test]
fn defaults_and_a_minimal_base_are_valid() {
    let loaded = load_env("").expect("valid");
    assert_eq!(loaded.version, "1.2.3");
    assert_eq!(loaded.image_ref(), "127.0.0.1:5000/calculator:1.2.3");
    assert_eq!(
        loaded.files,
        ["environments/base.toml", "environments/test.toml"]
    );
}

#[test]
fn environment_overrides_base_tables_merge_and_arrays_replace() {
    let dir = project(
        &format!(
            "{BASE}[gateway]\nserver_names = [\"a.example.com\", \"b.example.com\"]\nburst = 5\n[env]\nA = \"1\"\nB = \"2\"\n"
        ),
        "[gateway]\nserver_names = [\"c.example.com\"]\n[env]\nB = \"3\"\n",
    );
    let loaded = load(dir.path(), Some("test"), &Overrides::default()).expect("valid");
    let c = &loaded.config;
    assert_eq!(c.gateway.server_names, ["c.example.com"]);
    assert_eq!(
        c.gateway.burst, 5,
        "keys the environment does not set are inherited"
    );
    assert_eq!(c.env["A"], "1");
    assert_eq!(c.env["B"], "3");
}

#[test]
fn env_vars_then_set_flags_override_files_in_that_order() {
    let dir = project(BASE, "replicas = 2\n[image]\ntag = \"from-file\"\n");
    let overrides = Overrides {
        set: vec![
            "image.tag=from-flag".into(),
            "gateway.server_names=[\"x.example.com\", \"y.example.com\"]".into(),
        ],
        env: vec![
            ("SHIPIT__IMAGE__TAG".into(), "from-env".into()),
            ("SHIPIT__REPLICAS".into(), "4".into()),
            ("SHIPIT__ENV__LOG_LEVEL".into(), "trace".into()),
            ("SHIPIT__AUTOSCALING__ENABLED".into(), "true".into()),
            ("SHIPIT__AUTOSCALING__MAX".into(), "8".into()),
            ("UNRELATED".into(), "x".into()),
        ],
    };
    let loaded = load(dir.path(), Some("test"), &overrides).expect("valid");
    let c = &loaded.config;
    assert_eq!(c.image.tag, "from-flag");
    assert_eq!(c.replicas, 4);
    assert_eq!(
        c.env["LOG_LEVEL"], "trace",
        "keys of free-form tables keep their case"
    );
    assert!(c.autoscaling.enabled);
    assert_eq!(c.autoscaling.max, 8);
    assert_eq!(c.gateway.server_names, ["x.example.com", "y.example.com"]);
    assert_eq!(loaded.image_ref(), "127.0.0.1:5000/calculator:from-flag");
}

#[test]
fn overrides_are_typed_by_the_field_they_land_on() {
    let dir = project(BASE, "");
    let overrides = Overrides {
        set: vec![
            "replicas=three".into(),
            "gateway.tls.enabled=yes".into(),
            "app.port.x=1".into(),
            "novalue".into(),
        ],
        env: vec![],
    };
    let err = load(dir.path(), Some("test"), &overrides).unwrap_err();
    let text = err.render();
    assert!(
        text.contains("expected an integer, found `three` (key `replicas`)"),
        "{text}"
    );
    assert!(text.contains("--> --set replicas\n"), "{text}");
    assert!(
        text.contains("expected a boolean (true or false), found `yes`"),
        "{text}"
    );
    assert!(
        text.contains("expected an integer, found a table (key `app.port`)"),
        "{text}"
    );
    assert!(text.contains("--set novalue has no `=`"), "{text}");
}

#[test]
fn an_override_cannot_descend_into_a_value_set_by_a_file() {
    let dir = project(BASE, "[app]\nport = 8080\n");
    let overrides = Overrides {
        set: vec!["app.port.x=1".into()],
        env: vec![],
    };
    let text = load(dir.path(), Some("test"), &overrides)
        .unwrap_err()
        .render();
    assert!(
        text.contains("cannot override: `app.port` is an integer, not a table"),
        "{text}"
    );
}

#[test]
fn unknown_keys_get_a_did_you_mean_and_every_problem_is_reported_at_once() {
    let env = "replcas = 2\n[gateway]\nrate_limt = \"5r/s\"\nburst = \"many\"\n[deploy]\nstrategy = \"blue_green\"\n";
    let found = problems(env);
    assert_eq!(found.len(), 4, "{found:?}");
    let err = load_env(env).unwrap_err();
    let text = err.render();
    assert!(text.contains("error: unknown key `replcas` at the top level (key `replcas`)\n  --> environments/test.toml:1:1"), "{text}");
    assert!(text.contains("did you mean `replicas`?"), "{text}");
    assert!(
        text.contains("unknown key `rate_limt` in [gateway]"),
        "{text}"
    );
    assert!(text.contains("did you mean `rate_limit`?"), "{text}");
    assert!(text.contains("expected an integer, found a string (key `gateway.burst`)\n  --> environments/test.toml:4:9"), "{text}");
    assert!(
        text.contains("invalid value \"blue_green\" (key `deploy.strategy`)"),
        "{text}"
    );
    assert!(text.contains("did you mean \"blue-green\"?"), "{text}");
}

#[test]
fn syntax_errors_are_located() {
    let err = load_env("[app\nname = 1\n").unwrap_err();
    let report = &err.reports()[0];
    assert_eq!(report.file.as_deref(), Some("environments/test.toml"));
    assert_eq!(report.line, Some(1));
    assert!(
        report.message.starts_with("invalid TOML:"),
        "{}",
        report.message
    );
}

#[test]
fn a_missing_environment_lists_the_known_ones() {
    let dir = project(BASE, "");
    let err = load(dir.path(), Some("prod"), &Overrides::default()).unwrap_err();
    let text = err.render();
    assert!(text.contains("cannot read"), "{text}");
    assert!(text.contains("known environments: test"), "{text}");
}

#[test]
fn semantic_rules_each_name_their_key() {
    let cases: &[(&str, &str)] = &[
        ("replicas = 0\n", "replicas"),
        (
            "[autoscaling]\nenabled = true\nmin = 5\nmax = 2\n",
            "autoscaling.min",
        ),
        (
            "[autoscaling]\nenabled = true\ncpu_target = 150\n",
            "autoscaling.cpu_target",
        ),
        ("[app]\nport = 70000\n", "app.port"),
        ("[app]\nport = 0\n", "app.port"),
        ("[gateway]\nport = -1\n", "gateway.port"),
        ("[app]\nname = \"Calculator_App\"\n", "app.name"),
        ("[app]\nhealth_path = \"health\"\n", "app.health_path"),
        ("[image]\nbuilder = \"rust\"\n", "image.builder"),
        ("[image]\nbuilder = \"rust:latest\"\n", "image.builder"),
        ("[image]\nruntime = \"Debian:12\"\n", "image.runtime"),
        (
            "[image]\nbuilder = \"rust:1@sha256:abc\"\n",
            "image.builder",
        ),
        ("[image]\nregistry = \"bad host!\"\n", "image.registry"),
        (
            "[image]\nrepository = \"Shipit/Calc\"\n",
            "image.repository",
        ),
        ("[image]\ntag = \"-bad\"\n", "image.tag"),
        ("[image]\nuser = 0\n", "image.user"),
        (
            "[image]\nsigning_key = \"-----BEGIN PRIVATE KEY-----\"\n",
            "image.signing_key",
        ),
        (
            "[image]\nverify_key = \"signing.pub\"\n",
            "image.verify_key",
        ),
        (
            "[image]\nverify_key = \"-----BEGIN PUBLIC KEY-----\\nAAAA\\n-----END PUBLIC KEY-----\"\n",
            "image.verify_key",
        ),
        ("[image]\nplatform = \"windows/amd64\"\n", "image.platform"),
        (
            "[image.build_args]\nGIT_TOKEN = \"abc\"\n",
            "image.build_args.GIT_TOKEN",
        ),
        (
            "[image.build_args]\nFLAGS = \"a\\\"b\"\n",
            "image.build_args.FLAGS",
        ),
        (
            "[kubernetes]\nnamespace = \"My-Namespace\"\n",
            "kubernetes.namespace",
        ),
        (
            "[kubernetes.ingress]\nhost = \"bad_host.example.com\"\n",
            "kubernetes.ingress.host",
        ),
        (
            "[kubernetes.ingress]\ntls_secret = \"TLS\"\n",
            "kubernetes.ingress.tls_secret",
        ),
        (
            "[kubernetes.pdb]\nenabled = true\nmin_available = 1\n",
            "kubernetes.pdb.min_available",
        ),
        (
            "[gateway]\nserver_names = [\"ok.example.com\", \"bad;name\"]\n",
            "gateway.server_names.1",
        ),
        ("[gateway]\nserver_names = []\n", "gateway.server_names"),
        (
            "[resources.requests]\ncpu = \"lots\"\n",
            "resources.requests.cpu",
        ),
        (
            "[resources.limits]\nmemory = \"128MB\"\n",
            "resources.limits.memory",
        ),
        (
            "[resources.requests]\nmemory = \"1Gi\"\n[resources.limits]\nmemory = \"128Mi\"\n",
            "resources.requests.memory",
        ),
        (
            "[deploy]\nhealth_timeout = \"30\"\n",
            "deploy.health_timeout",
        ),
        ("[deploy]\ndrain_timeout = \"0s\"\n", "deploy.drain_timeout"),
        ("[deploy]\nstrategy = \"canary\"\n", "deploy.strategy"),
        (
            "[deploy]\ntarget = \"kubernetes\"\nstrategy = \"blue-green\"\n",
            "deploy.strategy",
        ),
        ("[gateway]\nrate_limit = \"10/s\"\n", "gateway.rate_limit"),
        ("[gateway]\nbody_size = \"16kb\"\n", "gateway.body_size"),
        (
            "[gateway.tls]\nenabled = true\ncertificate = \"relative/tls.crt\"\n",
            "gateway.tls.certificate",
        ),
        (
            "[gateway.tls]\nenabled = true\ncertificate_key = \"/other/dir/tls.key\"\n",
            "gateway.tls.certificate_key",
        ),
        (
            "[secrets]\nDB_PASSWORD = \"hunter2\"\n",
            "secrets.DB_PASSWORD",
        ),
        (
            "[secrets]\nDB_PASSWORD = \"vault:db\"\n",
            "secrets.DB_PASSWORD",
        ),
        (
            "[secrets]\nDB_PASSWORD = \"file:relative/path\"\n",
            "secrets.DB_PASSWORD",
        ),
        ("[env]\nAPI_TOKEN = \"abc123\"\n", "env.API_TOKEN"),
        ("[env]\n\"BAD-NAME\" = \"x\"\n", "env.BAD-NAME"),
        (
            "[monitoring]\ngrafana = true\nprometheus = false\n",
            "monitoring.grafana",
        ),
        (
            "[monitoring.alerts]\nerror_rate = 5\n",
            "monitoring.alerts.error_rate",
        ),
        ("[smoke]\nurl = \"localhost:8080\"\n", "smoke.url"),
        ("[app]\nversion = \"1.2\"\n", "app.version"),
        (
            "[app]\ndescription = \"say \\\"hi\\\"\"\n",
            "app.description",
        ),
        ("[ci]\nrust_toolchain = \"nightly\"\n", "ci.rust_toolchain"),
    ];
    for (env, key) in cases {
        let found = keys(env);
        assert!(
            found.contains(&key.to_string()),
            "{env:?}: expected a problem at `{key}`, got {found:?}"
        );
    }
}

#[test]
fn semantic_problems_point_at_the_file_and_line_that_set_the_value() {
    let err = load_env("# comment\n[autoscaling]\nenabled = true\nmin = 5\nmax = 2\n").unwrap_err();
    let report = err
        .reports()
        .into_iter()
        .find(|r| r.key == "autoscaling.min")
        .expect("problem");
    assert_eq!(
        (report.file.as_deref(), report.line, report.column),
        (Some("environments/test.toml"), Some(4), Some(7))
    );
    assert_eq!(report.help.as_deref(), Some("min <= max"));
}

#[test]
fn a_problem_with_a_default_value_says_it_is_the_default() {
    let err = load_env("replicas = 1\n[kubernetes.pdb]\nenabled = true\n").unwrap_err();
    let problem = err
        .problems
        .iter()
        .find(|p| p.key == "kubernetes.pdb.min_available")
        .expect("problem");
    assert!(problem.origin.is_none());
    assert!(
        problem.message.ends_with("(built-in default)"),
        "{}",
        problem.message
    );
    assert!(
        problem
            .help
            .as_deref()
            .unwrap()
            .contains("set `kubernetes.pdb.min_available` in environments/base.toml")
    );
}

#[test]
fn a_wrong_type_is_reported_once_not_again_as_a_semantic_problem() {
    assert_eq!(keys("replicas = \"two\"\n"), ["replicas"]);
}

#[test]
fn cargo_version_source_reads_the_manifest() {
    let dir = project(
        "[app]\nname = \"svc\"\nversion_source = \"cargo\"\nmanifest = \"Cargo.toml\"\n",
        "",
    );
    fs::write(
        dir.path().join("Cargo.toml"),
        "[workspace.package]\nversion = \"2.0.0-rc.1\"\n",
    )
    .unwrap();
    let loaded = load(dir.path(), Some("test"), &Overrides::default()).expect("valid");
    assert_eq!(loaded.version, "2.0.0-rc.1");
    fs::write(dir.path().join("Cargo.toml"), "[package]\nname = \"x\"\n").unwrap();
    let err = load(dir.path(), Some("test"), &Overrides::default()).unwrap_err();
    assert_eq!(err.problems[0].key, "app.manifest");
}

#[test]
fn deploy_hosts_are_engine_addresses_each_listed_once() {
    let found = problems(
        "[deploy]\ntransfer = \"stream\"\n\n[[deploy.hosts]]\nengine = \"ssh://deploy@web1\"\naddress = \"10.0.0.5\"\n\n[[deploy.hosts]]\nengine = \"web2:22\"\n\n[[deploy.hosts]]\nengine = \"ssh://deploy@web1\"\ncert_path = \"/certs\"\n\n[[deploy.hosts]]\nengine = \"tcp://10.0.0.7:2376\"\naddress = \"not a host\"\nport = 1\n",
    );
    let keys: Vec<&str> = found.iter().map(|(k, _)| k.as_str()).collect();
    assert!(keys.contains(&"deploy.hosts.1.engine"), "{found:?}");
    assert!(
        found
            .iter()
            .any(|(k, m)| k == "deploy.hosts.2.engine" && m.contains("listed twice")),
        "{found:?}"
    );
    assert!(keys.contains(&"deploy.hosts.2.cert_path"), "{found:?}");
    assert!(keys.contains(&"deploy.hosts.3.address"), "{found:?}");
    assert!(
        found.iter().any(|(_, m)| m.contains("port")),
        "an unknown key in a host entry: {found:?}"
    );
    assert!(!keys.contains(&"deploy.hosts.0.engine"), "{found:?}");
}

#[test]
fn nothing_defaults_to_the_calculator_and_names_follow_app_name() {
    let dir = project("", "");
    let err = load(dir.path(), Some("test"), &Overrides::default()).unwrap_err();
    let keys: Vec<&str> = err.problems.iter().map(|p| p.key.as_str()).collect();
    assert!(keys.contains(&"app.name"), "{keys:?}");
    assert!(!keys.contains(&"image.repository"), "{keys:?}");
    let dir = project(
        "[app]\nname = \"orders\"\nversion_source = \"config\"\nversion = \"1.0.0\"\n",
        "",
    );
    let loaded = load(dir.path(), Some("test"), &Overrides::default()).expect("valid");
    let c = &loaded.config;
    assert_eq!(c.app.package, "orders");
    assert_eq!(c.image.repository, "orders");
    assert_eq!(c.kubernetes.namespace, "orders");
    assert_eq!(c.kubernetes.ingress.host, "orders.localhost");
    assert_eq!(loaded.image_ref(), "127.0.0.1:5000/orders:1.0.0");
}

#[test]
fn gateway_packages_are_exact_debian_versions_and_the_tag_names_the_haproxy() {
    let found = problems(
        "[deploy]\ngateway_image = \"shipit-offline/haproxy:2.6.12-bookworm\"\n[deploy.gateway_packages]\nhaproxy = \"2.8.5-1ubuntu3\"\nsocat = \"latest\"\nlua = \"5.3\"\n",
    );
    let keys: Vec<&str> = found.iter().map(|(k, _)| k.as_str()).collect();
    assert!(keys.contains(&"deploy.gateway_packages.socat"), "{found:?}");
    assert!(keys.contains(&"deploy.gateway_packages.lua"), "{found:?}");
    let tag = found
        .iter()
        .find(|(k, _)| k == "deploy.gateway_image")
        .expect("the tag's version is checked");
    assert!(tag.1.contains("pins HAProxy 2.8.5"), "{tag:?}");
    // A tag that names the pinned HAProxy, or no version at all, is valid.
    load_env("[deploy]\ngateway_image = \"gw/haproxy:2.8.5-noble\"\n[deploy.gateway_packages]\nhaproxy = \"1:2.8.5-1ubuntu3.3\"\nsocat = \"1.8.0.0-4build3\"\n")
        .expect("valid");
    load_env("[deploy]\ngateway_image = \"gw/haproxy:stable\"\n").expect("valid");
    load_env("[deploy]\ngateway_image = \"127.0.0.1:5000/gw:1\"\n").expect("valid");
    load_env("[deploy]\ngateway_image = \"gw/haproxy:2.6-bookworm\"\n").expect("valid");
}

#[test]
fn a_go_service_builds_a_main_package_of_its_module_on_scratch() {
    let loaded = load_env("[build]\nkind = \"go\"\n").expect("valid");
    assert_eq!(loaded.config.app.package, ".");
    assert_eq!(loaded.config.image.runtime, "scratch");
    load_env("[build]\nkind = \"go\"\nvendor = true\n[app]\npackage = \"./cmd/api\"\n")
        .expect("valid");
    for bad in ["../x", "./cmd/../x", "cmd/api", "./", "./a b"] {
        let found = problems(&format!(
            "[build]\nkind = \"go\"\n[app]\npackage = \"{bad}\"\n"
        ));
        assert!(
            found
                .iter()
                .any(|(k, m)| k == "app.package" && m.contains("main package")),
            "{bad}: {found:?}"
        );
    }
}

#[test]
fn accessories_roles_and_the_release_command_are_checked_at_once_at_their_keys() {
    let env = "[deploy]\nrelease_command = \"python3 manage.py migrate\"\n\n[[deploy.hosts]]\nengine = \"ssh://web1\"\n\n[accessories.db]\nimage = \"postgres\"\nhosts = [\"ssh://web9\"]\nvolumes = [\"data:relative\"]\nfiles = [\"../etc/passwd:/etc/x\"]\nportt = 5432\npublish = \"5432\"\n\n[accessories.db.backup]\ncommand = [\"pg_dump\"]\n\n[accessories.Cache]\nimage = \"redis:7.0\"\n\n[accessories.gateway]\nimage = \"redis:7.0\"\n\n[roles.worker]\nreplicas = 0\nstop_grace = \"soon\"\n\n[roles.web]\ncmd = [\"python3\", \"web.py\"]\nhealthcheck = [\"\"]\n";
    let dir = project(BASE, env);
    let err = load(dir.path(), Some("test"), &Overrides::default()).unwrap_err();
    let found: Vec<(String, String, Option<usize>)> = err
        .problems
        .iter()
        .map(|p| {
            (
                p.key.clone(),
                p.message.clone(),
                p.origin.as_ref().map(|o| o.span.start),
            )
        })
        .collect();
    let has = |key: &str, words: &str| {
        assert!(
            found
                .iter()
                .any(|(k, m, line)| k == key && m.contains(words) && line.is_some()),
            "{key}: {words}: {found:#?}"
        );
    };
    has("deploy.release_command", "");
    has("accessories.db.image", "not pinned");
    has(
        "accessories.db.hosts",
        "\"ssh://web9\" is not one of deploy.hosts",
    );
    has("accessories.db.volumes.0", "is not a volume and a path");
    has("accessories.db.files.0", "is not a project file and a path");
    has("accessories.db.portt", "unknown key");
    has("accessories.db.publish", "is not an address and port");
    has("accessories.db.backup.command", "no restore");
    has("accessories.Cache", "is not a valid name");
    has(
        "accessories.gateway",
        "a name shipit gives its own containers",
    );
    has("roles.worker", "role `worker` has no cmd");
    has("roles.worker.replicas", "out of range");
    has("roles.worker.stop_grace", "is not a duration");
    has("roles.web", "cannot name a role");
    has("roles.web.healthcheck", "program is empty");
}

#[test]
fn a_kubernetes_role_without_a_check_must_become_ready_within_the_health_timeout() {
    let env = "[deploy]\ntarget = \"kubernetes\"\nhealth_interval = \"10s\"\nhealth_timeout = \"30s\"\n\n[roles.worker]\ncmd = [\"worker\"]\n\n[roles.clock]\ncmd = [\"clock\"]\nhealthcheck = [\"clock\", \"--ping\"]\n";
    let dir = project(BASE, env);
    let err = load(dir.path(), Some("test"), &Overrides::default()).unwrap_err();
    let roles: Vec<(&str, &str)> = err
        .problems
        .iter()
        .filter(|p| p.key.starts_with("roles."))
        .map(|p| (p.key.as_str(), p.message.as_str()))
        .collect();
    assert_eq!(roles.len(), 1, "{roles:?}");
    assert_eq!(roles[0].0, "roles.worker");
    assert!(
        roles[0].1.contains("three deploy.health_interval (10s)"),
        "{roles:?}"
    );
}
