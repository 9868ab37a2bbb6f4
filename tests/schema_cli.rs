//! `sluice check` on schemas, `sluice schema validate` (JSON Schema and OpenAPI 3.0)
//! and `sluice schema infer`: output and exit codes.

mod common;

use common::sluice;

#[test]
fn check_accepts_the_example_and_refuses_incompatible_versions() {
    let (code, stdout, stderr) = sluice(&["check", "--config", "examples/schemas/sluice.yaml"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("ok (2 buses, 1 rules, 1 targets)"),
        "{stdout}"
    );

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sluice.yaml");
    std::fs::write(
        &config,
        r#"
buses: [{name: orders, validation: enforce}]
schemas:
  - name: order
    compatibility: full
    versions:
      - schema: {type: object, properties: {n: {type: integer}}}
      - schema: {type: object, properties: {n: {type: number}}}
      - file: missing.json
      - schema: {type: nonsense}
"#,
    )
    .unwrap();
    let (code, _, stderr) = sluice(&["check", "--config", config.to_str().unwrap()]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("schemas[0].versions[1]: version 2 is not full compatible: version 1 -> new (forward: old readers, new data): /properties/n: the new version allows type number; the previous version allows only integer"),
        "{stderr}"
    );
    assert!(
        stderr.contains("schemas[0].versions[2]: cannot read"),
        "{stderr}"
    );
    assert!(
        stderr.contains("schemas[0].versions[3]: invalid schema"),
        "{stderr}"
    );
}

const OPENAPI: &str = r##"
openapi: 3.0.3
info: {title: t, version: "1"}
paths: {}
components:
  schemas:
    Order:
      type: object
      required: [id, customer]
      example: {id: "1"}
      discriminator: {propertyName: kind}
      properties:
        id: {type: string}
        note: {type: string, nullable: true}
        customer: {$ref: '#/components/schemas/Customer'}
    Customer:
      type: object
      required: [email]
      properties:
        email: {type: string, format: email}
"##;

#[test]
fn validate_openapi_nullable_and_refs() {
    let dir = tempfile::tempdir().unwrap();
    let doc = dir.path().join("api.yaml");
    std::fs::write(&doc, OPENAPI).unwrap();
    let doc = doc.to_str().unwrap();
    let args = |data: &'static str| {
        vec![
            "schema",
            "validate",
            "--format",
            "openapi",
            "--component",
            "Order",
            "--schema",
            doc,
            "--data",
            data,
        ]
    };
    let (code, stdout, stderr) = sluice(&args(
        r#"{"id": "1", "note": null, "customer": {"email": "a@b.io"}}"#,
    ));
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.starts_with("valid"), "{stdout}");

    let (code, stdout, _) = sluice(&args(
        r#"{"id": "1", "note": 5, "customer": {"email": "nope"}}"#,
    ));
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains("2 violation(s)"), "{stdout}");
    assert!(stdout.contains("data/note: 5 is not of type"), "{stdout}");
    assert!(
        stdout.contains("data/customer/email: \"nope\" is not a \"email\""),
        "{stdout}"
    );

    // A CloudEvent's data, given with --event.
    let (code, stdout, _) = sluice(&[
        "schema",
        "validate",
        "--format",
        "openapi",
        "--component",
        "Order",
        "--schema",
        doc,
        "--event",
        r#"{"specversion":"1.0","id":"1","source":"s","type":"t","data":{"id":"1"}}"#,
    ]);
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stdout.contains("data: \"customer\" is a required property"),
        "{stdout}"
    );

    // Bad input: exit 2 with the reason on stderr.
    let (code, _, stderr) = sluice(&[
        "schema", "validate", "--format", "openapi", "--schema", doc, "--data", "{}",
    ]);
    assert_eq!(code, 2);
    assert!(stderr.contains("component"), "{stderr}");
    let (code, _, stderr) = sluice(&[
        "schema",
        "validate",
        "--schema",
        r#"{"type": 3}"#,
        "--data",
        "{}",
    ]);
    assert_eq!(code, 2);
    assert!(stderr.contains("invalid schema"), "{stderr}");
    let (code, _, stderr) = sluice(&[
        "schema",
        "validate",
        "--schema",
        "{}",
        "--event",
        "{not json",
    ]);
    assert_eq!(code, 2);
    assert!(stderr.contains("invalid event"), "{stderr}");
}

#[test]
fn infer_reads_arrays_and_lines() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("events.json");
    std::fs::write(
        &file,
        r#"[{"specversion":"1.0","id":"1","source":"a","type":"t","data":{"n":1,"s":"x"}},
            {"specversion":"1.0","id":"2","source":"a","type":"t","data":{"n":2}},
            {"specversion":"1.0","id":"3","source":"b","type":"t","data":[1,2]}]"#,
    )
    .unwrap();
    let (code, stdout, stderr) = sluice(&["schema", "infer", "--events", file.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    let out: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(out[0]["source"], "a");
    assert_eq!(out[0]["schema"]["required"], serde_json::json!(["n"]));
    assert_eq!(
        out[1]["schema"]["items"],
        serde_json::json!({"type": "integer"})
    );

    std::fs::write(
        &file,
        "{\"source\":\"a\",\"type\":\"t\",\"data\":{}}\nnot json\n",
    )
    .unwrap();
    let (code, _, stderr) = sluice(&["schema", "infer", "--events", file.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(stderr.contains("line 2: not JSON"), "{stderr}");
}

#[test]
fn check_compares_recursive_schemas_quickly() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sluice.yaml");
    let tree = r##"{type: object, properties: {value: {type: integer}, left: {$ref: "#"}, right: {$ref: "#"}}}"##;
    let tree_required = r##"{type: object, required: [value], properties: {value: {type: integer}, left: {$ref: "#"}, right: {$ref: "#"}}}"##;
    std::fs::write(
        &config,
        format!(
            r#"
buses: [{{name: orders, validation: enforce}}]
schemas:
  - name: tree
    compatibility: full_transitive
    versions:
      - schema: {tree}
      - schema: {tree}
  - name: stricter
    versions:
      - schema: {tree}
      - schema: {tree_required}
"#
        ),
    )
    .unwrap();
    let started = std::time::Instant::now();
    let (code, _, stderr) = sluice(&["check", "--config", config.to_str().unwrap()]);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(code, 1, "{stderr}");
    assert!(!stderr.contains("schemas[0]"), "{stderr}");
    assert!(
        stderr.contains("schemas[1].versions[1]: version 2 is not backward compatible")
            && stderr.contains("/properties/value: required by the new version"),
        "{stderr}"
    );
}
