//! Every error of a configuration, at its path (moved from `config/validate.rs`).

use super::Plan;

fn errors(yaml: &str) -> Vec<String> {
    match Plan::parse(yaml) {
        Ok(_) => vec![],
        Err(es) => es.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn functions_and_function_targets_are_checked() {
    let yaml = r#"
buses: [{name: orders}, {name: results}]
delivery: {claim_idle: 20s}
functions:
  - {name: f, command: bin/f, memory: 64, min_instances: 5, max_instances: 2}
  - {name: f, command: "", timeout: 0s}
  - {name: slow, command: bin/slow, timeout: 20s}
rules:
  - name: r
    bus: orders
    targets:
      - {name: a, kind: function}
      - {name: b, kind: function, function: nope, region: eu-west-1}
      - {name: c, kind: function, function: f, on_success: {bus: missing}}
      - {name: d, kind: aws-lambda, function: x, invocation_type: Event, on_success: {bus: results}}
      - {name: e, kind: http, url: "http://127.0.0.1:1/", function: f, region: x}
      - {name: g, kind: function, function: slow}
      - {name: h, kind: aws-lambda, function: x, endpoint: "ftp://x"}
"#;
    assert_eq!(
            errors(yaml),
            [
                "functions[0].memory: 64 MB is outside 128..=10240 (as Lambda)",
                "functions[0].min_instances: 5 exceeds max_instances 2",
                "functions[1].name: duplicate function name \"f\"",
                "functions[1].command: must not be empty",
                "functions[1].timeout: must be greater than 0",
                "rules[0].targets[0].function: a function target needs a function",
                "rules[0].targets[1].region: applies only to aws-eventbridge, alibaba-eventbridge and aws-lambda targets, not function",
                "rules[0].targets[1].function: no function named \"nope\" in functions",
                "rules[0].targets[2].on_success.bus: no bus named \"missing\" in buses",
                "rules[0].targets[3].on_success: an Event invocation has no result to chain; use RequestResponse",
                "rules[0].targets[4].region: applies only to aws-eventbridge, alibaba-eventbridge and aws-lambda targets, not http",
                "rules[0].targets[4].function: applies only to function and aws-lambda targets, not http",
                "rules[0].targets[5].function: delivery.claim_idle (20s) must exceed the function's queue_timeout + timeout + 1s (31s)",
                "rules[0].targets[6].endpoint: \"ftp://x\" is not an http(s) URL",
            ]
        );
}

#[test]
fn valid_config_parses() {
    let yaml = r#"
buses: [{name: orders, retention: 1d}]
rules:
  - name: r
    bus: orders
    pattern: {type: [order.paid]}
    targets: [{name: t, kind: http, url: "http://127.0.0.1:9000/x", timeout: 2s}]
"#;
    assert_eq!(errors(yaml), Vec::<String>::new());
}

#[test]
fn bridge_targets_and_connectors_are_validated_with_paths() {
    let yaml = r#"
gateway_id: "idc 1"
buses: [{name: orders}]
connectors:
  - {name: q, kind: sqs, bus: nope, queue_url: "not a url", wait: 30s, max_messages: 11}
rules:
  - name: r
    bus: orders
    targets:
      - {name: a, kind: aws-eventbridge, endpoint: "http://10.0.0.1:4566", transform: {form: ORIGINAL}}
      - {name: b, kind: alibaba-eventbridge, peer: "x,y", access_key_id: AK, access_key_secret: s, account_id: "1", security_token: "env:SLUICE_TEST_UNSET_STS"}
      - {name: c, kind: http, url: "http://127.0.0.1/x", peer: p}
      - {name: d, kind: aws-eventbridge, peer: aws, account_id: "1"}
"#;
    let got = errors(yaml);
    let expected = [
            "rules[0].targets[1].security_token: environment variable SLUICE_TEST_UNSET_STS is not set",
            "connectors[0].bus: no bus named \"nope\"",
            "connectors[0].queue_url: must be the queue's URL, e.g. https://sqs.us-east-1.amazonaws.com/123456789012/events",
            "connectors[0].wait: must be at most 20s (the SQS limit)",
            "connectors[0].max_messages: must be 1 to 10 (the SQS limit)",
            "gateway_id: must be non-empty, at most 128 characters, without commas or spaces",
        ];
    for e in expected {
        assert!(got.iter().any(|g| g == e), "missing {e:?} in {got:#?}");
    }
    let prefixes = [
        "rules[0].targets[0].peer: a aws-eventbridge target needs peer",
        "rules[0].targets[0].transform: ",
        "rules[0].targets[0].endpoint: http:// is allowed only for loopback",
        "rules[0].targets[1].peer: must be non-empty",
        "rules[0].targets[1].event_bus: ",
        "rules[0].targets[1].region: ",
        "rules[0].targets[2].peer: applies only to aws-eventbridge and alibaba-eventbridge",
        "rules[0].targets[3].account_id: applies only to alibaba-eventbridge",
    ];
    for p in prefixes {
        assert!(
            got.iter().any(|g| g.starts_with(p)),
            "missing {p:?} in {got:#?}"
        );
    }
    assert_eq!(got.len(), expected.len() + prefixes.len(), "{got:#?}");
}

#[test]
fn target_fields_follow_the_kind() {
    let yaml = r#"
buses: [{name: orders}]
rules:
  - name: r
    bus: orders
    targets:
      - {name: a, kind: http}
      - {name: b, kind: cloudevents, url: "http://127.0.0.1:9000/x"}
      - {name: c, kind: bus, url: "http://127.0.0.1:9000/x"}
"#;
    let got = errors(yaml);
    assert_eq!(
        got,
        [
            "rules[0].targets[0].url: a http target needs a url",
            "rules[0].targets[2].url: applies only to http, cloudevents, rabbitmq, nats, mqtt, redis, postgres and mysql targets, not bus",
            "rules[0].targets[2].bus: a bus target needs the bus to forward to",
        ]
    );
}

#[test]
fn bus_targets_name_another_bus_and_nothing_a_forward_cannot_do() {
    let yaml = r#"
buses: [{name: orders}, {name: audit}]
rules:
  - name: r
    bus: orders
    targets:
      - {name: a, kind: bus, bus: audit}
      - {name: b, kind: bus, bus: orders}
      - {name: c, kind: bus, bus: nope}
      - {name: d, kind: bus, bus: audit, retry: {max_attempts: 3}, transform: {form: ORIGINAL}}
"#;
    let got = errors(yaml);
    assert_eq!(
        got,
        [
            "rules[0].targets[1].bus: a rule cannot forward to its own bus (the event is already there)",
            "rules[0].targets[2].bus: no bus named \"nope\" in buses",
            "rules[0].targets[3].transform: a bus target forwards the event unchanged inside the routing transaction: nothing to transform, retry, pace or order",
            "rules[0].targets[3].retry: a bus target forwards the event unchanged inside the routing transaction: nothing to transform, retry, pace or order",
        ]
    );
}

#[test]
fn errors_name_their_path() {
    let yaml = r#"
buses: [{name: orders}, {name: orders}]
rules:
  - name: r
    bus: nope
    pattern: {type: order.paid}
    targets:
      - {name: t, kind: http, url: "/relative"}
      - {name: t, kind: http, url: "ftp://x/y", method: GET, concurrency: 0}
"#;
    let got = errors(yaml);
    for expected in [
        "buses[1].name: duplicate bus name \"orders\"",
        "rules[0].bus: no bus named \"nope\" in buses",
        "rules[0].pattern.type: ",
        "rules[0].targets[0].url: relative URL",
        "rules[0].targets[1].name: duplicate target name \"t\" in this rule",
        "rules[0].targets[1].url: scheme \"ftp\" is not http or https",
        "rules[0].targets[1].method: \"GET\" is not POST, PUT or PATCH",
        "rules[0].targets[1].concurrency: must be at least 1",
    ] {
        assert!(
            got.iter().any(|g| g.starts_with(expected)),
            "missing {expected:?} in {got:#?}"
        );
    }
}

#[test]
fn pattern_and_filter_errors_name_the_element() {
    let yaml = r#"
buses: [{name: orders}]
rules:
  - name: a
    bus: orders
    pattern: {data: {amount: [{numeric: [">", 5, "<", 1]}]}}
    targets: [{name: t, kind: http, url: "http://x/"}]
  - name: b
    bus: orders
    filters: [{exact: {type: x}}, {any: [{prefix: {Type: x}}]}]
    targets: [{name: t, kind: http, url: "http://x/"}]
  - name: c
    bus: orders
    filters: [{sql: "type = "}]
    targets: [{name: t, kind: http, url: "http://x/"}]
  - name: d
    bus: orders
    pattern: {type: [x], filters: ok}
    filters: [{exact: {type: x}}]
    targets: [{name: t, kind: http, url: "http://x/"}]
"#;
    let got = errors(yaml);
    for expected in [
        "rules[0].pattern.data.amount[0].numeric: the range is empty",
        "rules[1].filters[1].any[0].prefix.Type: not a CloudEvents attribute name",
        "rules[2].filters[0].sql: at ",
        "rules[3].pattern.filters: must be a list",
    ] {
        assert!(
            got.iter().any(|g| g.starts_with(expected)),
            "missing {expected:?} in {got:#?}"
        );
    }
    assert_eq!(got.len(), 4, "{got:#?}");
}

#[test]
fn type_errors_carry_path_and_line() {
    let yaml = "buses:\n  - name: a\nrules:\n  - name: r\n    bus: a\n    targets:\n      - {name: t, kind: http, url: \"http://x/\", timeout: soon}\n";
    let got = errors(yaml);
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(
        got[0].starts_with("line 7: rules[0].targets[0].timeout: invalid duration"),
        "{got:?}"
    );
}

#[test]
fn transforms_and_http_parameters_are_checked_at_load() {
    let yaml = r#"
buses: [{name: orders}]
rules:
  - name: r
    bus: orders
    targets:
      - name: a
        kind: http
        url: "http://x/orders/{id}/{other}"
        path_params: {id: "$.data.id", unused: "x"}
        query: {q: "$[oops"}
        headers: {x-tenant: "$.tenant", x-bad: "$.."}
        transform: {form: TEMPLATE, value: {n: "$.data.name"}, template: "hi ${m}"}
      - name: b
        kind: http
        url: "http://x/"
        transform: {InputTransformer: {InputPathsMap: {v: "nope"}, InputTemplate: "<v>"}}
"#;
    let got = errors(yaml);
    for expected in [
        "rules[0].targets[0].url: placeholder {other} has no entry in path_params",
        "rules[0].targets[0].path_params.unused: url has no {unused} placeholder",
        "rules[0].targets[0].query.q: unclosed [",
        "rules[0].targets[0].headers.x-bad: empty member name",
        "rules[0].targets[0].transform.template: ${m} is not a variable defined in value",
        "rules[0].targets[1].transform.InputTransformer.InputPathsMap.v: a JSONPath starts with $",
    ] {
        assert!(
            got.iter().any(|g| g.starts_with(expected)),
            "missing {expected:?} in {got:#?}"
        );
    }
    assert_eq!(got.len(), 6, "{got:#?}");
}

#[test]
fn sources_resolve_secrets_from_env_and_files() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("secret");
    std::fs::write(&file, "from-file\n").unwrap();
    std::env::set_var("SLUICE_TEST_SOURCE_SECRET", "from-env");
    let yaml = format!(
        r#"
buses: [{{name: b}}]
sources:
  - {{name: gh, kind: github, bus: b, secrets: ["env:SLUICE_TEST_SOURCE_SECRET", "file:{}", literal]}}
  - {{name: sw, kind: standard-webhooks, bus: b, secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw, dedupe: off, tolerance: 1m}}
  - {{name: h, kind: hmac, bus: b, secret: k, header: X-Sig, algorithm: sha512, encoding: base64, prefix: "sha512=", timestamp_header: X-Ts, signed_content: "{{timestamp}}:{{body}}"}}
  - {{name: tw, kind: twilio, bus: b, secret: t, url: "https://hooks.example.com/webhooks/tw"}}
  - {{name: u, kind: basic, bus: b, secret: pw, username: hooks, id_header: x-request-id}}
"#,
        file.display()
    );
    let plan = Plan::parse(&yaml).unwrap();
    let secrets: Vec<&[u8]> = plan.sources["gh"]
        .verifier
        .secrets
        .iter()
        .map(Vec::as_slice)
        .collect();
    assert_eq!(secrets, [&b"from-env"[..], b"from-file", b"literal"]);
    assert_eq!(plan.config.sources[1].dedupe.0, None);
    let debug = format!("{:?}", plan.config.sources[0]);
    assert!(
        !debug.contains("from-env") && !debug.contains("literal"),
        "{debug}"
    );
    assert!(debug.contains("env:SLUICE_TEST_SOURCE_SECRET"), "{debug}");
}

#[test]
fn source_errors_name_their_path() {
    let yaml = r#"
buses: [{name: b}]
sources:
  - {name: a, kind: github, bus: nope, secret: "env:SLUICE_TEST_NOT_SET_ANYWHERE", url: "http://x/", tolerance: 1m}
  - {name: a, kind: stripe, bus: b, secrets: [ok, "file:/nonexistent/sluice-secret"]}
  - {name: c, kind: standard-webhooks, bus: b, secret: "whsec_***"}
  - {name: d, kind: twilio, bus: b, secret: x}
  - {name: e, kind: hmac, bus: b, secret: x, signed_content: "{id}{body}"}
  - {name: f, kind: slack, bus: b}
  - {name: g, kind: token, bus: b, secret: x, secrets: [y]}
  - {name: h, kind: basic, bus: b, secret: x, dedupe: soon}
"#;
    let got = errors(yaml);
    assert_eq!(got.len(), 1, "a type error stops parsing: {got:#?}");
    assert!(
        got[0].contains("sources[7].dedupe: invalid dedupe window"),
        "{got:?}"
    );

    let got = errors(&yaml.replace("dedupe: soon", "username: u"));
    for expected in [
        "sources[0].secret: environment variable SLUICE_TEST_NOT_SET_ANYWHERE is not set",
        "sources[0].bus: no bus named \"nope\" in buses",
        "sources[0].url: applies only to kind twilio, not github",
        "sources[0].tolerance: kind github signs no timestamp",
        "sources[1].name: duplicate source name \"a\"",
        "sources[1].secrets[1]: cannot read secret file /nonexistent/sluice-secret",
        "sources[2].secret: not a Standard Webhooks secret",
        "sources[3].url: kind twilio needs the public URL",
        "sources[4].header: kind hmac needs the signature header",
        "sources[4].signed_content: {id} is not a placeholder",
        "sources[5].secret: kind slack needs a secret",
        "sources[6]: set secret or secrets, not both",
    ] {
        assert!(
            got.iter().any(|g| g.starts_with(expected)),
            "missing {expected:?} in {got:#?}"
        );
    }
    assert_eq!(got.len(), 12, "{got:#?}");
}

#[test]
fn retry_and_signing_are_validated_with_paths() {
    let yaml = r#"
buses: [{name: b}]
delivery: {claim_idle: 5s}
rules:
  - name: r
    bus: b
    targets:
      - {name: ok, kind: http, url: "http://x/", timeout: 2s, retry: {max_attempts: 3, initial: 100ms, max: 1m, max_age: 1h}, signing: {secret: whsec_c2VjcmV0}}
      - {name: bad, kind: http, url: "http://x/", timeout: 4s, retry: {max_attempts: 0, initial: 0s, max: 0s, max_age: 0s}, signing: {secret: "whsec_!!"}}
      - {name: env, kind: http, url: "http://x/", timeout: 1s, signing: {secret: "env:SLUICE_TEST_SIGNING_UNSET"}}
"#;
    assert_eq!(
            errors(yaml),
            [
                "rules[0].targets[1].signing.secret: not a Standard Webhooks secret (whsec_ followed by base64)",
                "delivery.claim_idle: must exceed rules[0].targets[1].timeout + 1s (5s): an attempt in flight does not touch its entry, so live deliveries would be taken over",
                "rules[0].targets[1].retry.max_attempts: must be at least 1",
                "rules[0].targets[1].retry.max_age: must be greater than 0",
                "rules[0].targets[1].retry.initial: must be greater than 0",
                // Each target's errors together, in the order they are checked.
                "rules[0].targets[2].signing.secret: environment variable SLUICE_TEST_SIGNING_UNSET is not set",
            ]
        );
    let too_old = "buses: [{name: b}]\nrules:\n  - name: r\n    bus: b\n    targets:\n      - {name: t, kind: http, url: \"http://x/\", retry: {max_age: 400d}}\n";
    assert_eq!(
            errors(too_old),
            ["rules[0].targets[0].retry.max_age: must be at most 365d (a stream is no place for older events)"]
        );
    let good = "buses: [{name: b}]\nrules:\n  - name: r\n    bus: b\n    targets:\n      - {name: ok, kind: http, url: \"http://x/\", retry: {max_attempts: 3, max_age: 1h}, signing: {secret: whsec_c2VjcmV0}}\n      - {name: plain, kind: http, url: \"http://x/\"}\n";
    let plan = Plan::parse(good).unwrap();
    let config = &plan.config;
    let t = &config.rules[0].targets[0];
    match &plan.buses[0].targets[0].built {
        Some(crate::targets::BuiltTarget::Http(spec)) => {
            assert_eq!(spec.signing_key(), Some(&b"secret"[..]))
        }
        other => panic!("{other:?}"),
    }
    let policy = t.retry_policy(&config.delivery);
    assert_eq!(
        (policy.max_attempts, policy.max_age),
        (3, std::time::Duration::from_secs(3600))
    );
    let legacy = config.rules[0].targets[1].retry_policy(&crate::config::Delivery {
        retry_delay: Some(std::time::Duration::from_millis(200)),
        ..Default::default()
    });
    assert_eq!(legacy.initial, legacy.max);
    // The legacy fixed delay retries without an attempt limit, as it always did.
    assert_eq!(legacy.max_attempts, u32::MAX);
}

#[test]
fn unknown_fields_are_rejected() {
    let got = errors("buses: [{name: a, retension: 1d}]\n");
    assert!(
        got[0].contains("buses[0]") && got[0].contains("unknown field `retension`"),
        "{got:?}"
    );
}

#[test]
fn aws_section_is_validated_with_paths() {
    std::env::set_var("SLUICE_TEST_AWS_SECRET", "s3cr3t");
    let ok = r#"
buses: [{name: default}, {name: orders}]
aws:
  region: eu-west-1
  account: "123456789012"
  access_keys: [{id: AKIAEXAMPLE, secret: env:SLUICE_TEST_AWS_SECRET}]
"#;
    assert_eq!(errors(ok), Vec::<String>::new());
    let bad = r#"
buses: [{name: orders}]
aws:
  region: Mars
  account: "12"
  default_bus: nope
  access_keys: [{id: "AK/1", secret: env:SLUICE_TEST_AWS_UNSET}, {id: "AK/1", secret: x}]
"#;
    assert_eq!(
            errors(bad),
            [
                "aws.access_keys[0].secret: environment variable SLUICE_TEST_AWS_UNSET is not set",
                "aws.region: \"Mars\" is not a region name such as us-east-1",
                "aws.account: \"12\" is not a 12-digit account id",
                "aws.default_bus: no bus named \"nope\" in buses",
                "aws.access_keys[0].id: must be 1 to 128 letters and digits, such as AKIAIOSFODNN7EXAMPLE",
                "aws.access_keys[1].id: must be 1 to 128 letters and digits, such as AKIAIOSFODNN7EXAMPLE",
                "aws.access_keys[1].id: duplicate access key id \"AK/1\"",
            ]
        );
    assert_eq!(
            errors("aws: {}\n"),
            ["aws.access_keys: auth sigv4 needs at least one access key ({id, secret}), or set auth: none"]
        );
    assert_eq!(errors("aws: {auth: none}\n"), Vec::<String>::new());
    assert!(errors("aws: {auth: none, keys: []}\n")[0].contains("unknown field `keys`"));
}

#[test]
fn alibaba_section_is_validated_with_paths() {
    let ok = "buses: [{name: default}]\nalibaba: {account: \"1649015465000000\", default_bus: default, access_keys: [{id: LTAI5tKey, secret: s}]}\n";
    assert_eq!(errors(ok), Vec::<String>::new());
    let bad = "alibaba: {account: acme, default_bus: nope, max_clock_skew: 0s}\n";
    assert_eq!(
            errors(bad),
            [
                "alibaba.account: \"acme\" is not an account id (digits)",
                "alibaba.default_bus: no bus named \"nope\" in buses",
                "alibaba.max_clock_skew: must be greater than 0",
                "alibaba.access_keys: auth signature needs at least one AccessKey ({id, secret}), or set auth: none",
            ]
        );
    assert_eq!(
            errors("alibaba: {auth: none, max_clock_skew: 300000y, dedupe: 400d, require_content_md5: true}\naws: {auth: none, max_clock_skew: 2h}\n"),
            [
                "aws.max_clock_skew: 2h is over the limit of 1h",
                "alibaba.max_clock_skew: 300000years is over the limit of 1h",
                "alibaba.dedupe: must be at most 365d, or off",
                "alibaba.require_content_md5: needs auth: signature (the body is only checked on signed requests)",
            ]
        );
    assert_eq!(
            errors("aws: {auth: none, max_clock_skew: 1h}\nalibaba: {auth: none, max_clock_skew: 1h, dedupe: off}\n"),
            Vec::<String>::new()
        );
    assert_eq!(
        errors("alibaba: {auth: none, access_keys: [{id: k, secret: s}]}\n"),
        ["alibaba.access_keys: not used with auth: none; remove them or set auth: signature"]
    );
}

#[test]
fn oauth_needs_a_token_url_credentials_and_owns_the_authorization_header() {
    let yaml = r#"
buses: [{name: orders}]
rules:
  - name: r
    bus: orders
    targets:
      - name: a
        kind: http
        url: "http://127.0.0.1:9000/x"
        headers: {Authorization: "Bearer x"}
        oauth: {token_url: "/token", client_id: "", client_secret: s, method: DELETE}
"#;
    let got = errors(yaml);
    assert_eq!(
        got,
        [
            "rules[0].targets[0].oauth.token_url: must be an absolute http:// or https:// URL",
            "rules[0].targets[0].oauth.client_id: must not be empty",
            "rules[0].targets[0].oauth.method: must be POST, GET or PUT",
            "rules[0].targets[0].headers.Authorization: set by oauth (the bearer token): leave it out",
        ]
    );
}
