//! Arbitrary methods, paths, headers and bodies never get a 5xx.

use proptest::prelude::*;

use crate::server::TestServer;

fn method() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("GET".to_string()),
        Just("POST".to_string()),
        Just("PUT".to_string()),
        Just("DELETE".to_string()),
        Just("PATCH".to_string()),
        Just("OPTIONS".to_string()),
        Just("HEAD".to_string()),
        "[A-Z]{1,10}",
    ]
}

fn path() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("/".to_string()),
        Just("/calculate".to_string()),
        Just("/history".to_string()),
        Just("/memory/store".to_string()),
        Just("/memory/add".to_string()),
        Just("/memory/clear".to_string()),
        "/history\\?limit=[-0-9a-z%]{0,8}",
        "/[a-zA-Z0-9._~%!$&'()*+,;=:@/-]{0,40}",
    ]
}

fn number() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<f64>().prop_map(|x| format!("{x:e}")),
        any::<i64>().prop_map(|x| x.to_string()),
        Just("1e999".to_string()),
        Just("-0".to_string()),
        "[-+.0-9eE]{1,12}",
    ]
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..300),
        ("[a-z]{0,12}", proptest::collection::vec(number(), 0..5)).prop_map(|(op, operands)| {
            format!(
                r#"{{"operation":"{op}","operands":[{}]}}"#,
                operands.join(",")
            )
            .into_bytes()
        }),
        number().prop_map(|n| format!(r#"{{"value":{n}}}"#).into_bytes()),
        ".{0,200}".prop_map(String::into_bytes),
    ]
}

fn content_type() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(None),
        Just(Some("application/json".to_string())),
        Just(Some("application/json; charset=utf-8".to_string())),
        "[ -~]{0,30}".prop_map(Some),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn no_request_gets_a_5xx(method in method(), path in path(), content_type in content_type(), body in body()) {
        thread_local! { static SERVER: TestServer = TestServer::start(); }
        SERVER.with(|server| {
            let mut headers = Vec::new();
            if let Some(ct) = &content_type {
                headers.push(("Content-Type", ct.as_str()));
            }
            let response = server.request(&method, &path, &headers, &body);
            prop_assert!(response.status < 500, "{} {} -> {}: {}", method, path, response.status, response.text());
            prop_assert!(response.header("x-request-id").is_some() || response.status == 400);
            Ok(())
        })?;
    }
}
