//! What a user reads when a YAML input is wrong: `sluice check` names the file, the line
//! and the field path; YAML schema files, patterns and transforms name line and column.
//!
//! The expected texts were taken from the `serde_yaml` 0.9 build (before the move to
//! `yaml_serde`) and must stay as they are.

mod common;

use common::sluice;

/// `sluice check` on `yaml` (written as `bad.yaml` in a fresh directory, beside `extra`
/// files); returns (exit code, stderr).
fn check(yaml: &str, extra: &[(&str, &str)]) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in extra {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let path = dir.path().join("bad.yaml");
    std::fs::write(&path, yaml).unwrap();
    let (code, _, stderr) = sluice(&["check", "--config", path.to_str().unwrap()]);
    (code, stderr)
}

#[test]
fn syntax_and_type_errors_name_line_and_field_path() {
    let cases = [
        (
            "buses: [{name: orders}\n",
            "bad.yaml:2: buses: did not find expected ',' or ']'",
        ),
        (
            "buses:\n  - name: orders\n\tretention: 7d\n",
            "bad.yaml:3: buses[0].name: found a tab character that violates indentation",
        ),
        (
            "buses: [{name: a}]\nbuses: [{name: b}]\n",
            "bad.yaml:1: duplicate field `buses`",
        ),
        (
            "buses:\n  - name: orders\n    retension: 7d\n",
            "bad.yaml:3: buses[0].retension: unknown field `retension`, expected one of `name`, `description`, `retention`,",
        ),
        (
            "buses:\n  - name: orders\n    max_len: lots\n",
            "bad.yaml:3: buses[0].max_len: invalid type: string \"lots\", expected u64",
        ),
        (
            "listen: [1, 2]\n",
            "bad.yaml:1: listen: invalid type: sequence, expected a string",
        ),
        (
            "buses:\n  - name: orders\n    retention: forever\n",
            "bad.yaml:2: buses[0].retention: invalid duration \"forever\"",
        ),
        (
            "buses: [{name: orders}]\nrules:\n  - name: r\n    bus: orders\n    targets:\n      - {name: t, kind: htp, url: \"http://x/\"}\n",
            "bad.yaml:6: rules[0].targets[0].kind: unknown variant `htp`, expected one of `http`, `cloudevents`,",
        ),
    ];
    for (yaml, expected) in cases {
        let (code, stderr) = check(yaml, &[]);
        assert_eq!(code, 1, "{yaml}\n{stderr}");
        assert!(
            stderr.contains(expected),
            "for {yaml:?}\nexpected {expected:?}\nin {stderr}"
        );
        assert!(stderr.contains("1 error(s) in"), "{stderr}");
    }
}

#[test]
fn yaml_schema_files_are_read_and_their_errors_have_line_and_column() {
    let config = "buses: [{name: orders}]\nschemas:\n  - name: order\n    versions:\n      - file: order.yaml\n";
    let (code, stderr) = check(config, &[("order.yaml", "type: object\nrequired: [id]\n")]);
    assert_eq!(code, 0, "{stderr}");

    let (code, stderr) = check(
        config,
        &[("order.yaml", "type: object\nproperties: [oops\n")],
    );
    assert_eq!(code, 1);
    assert!(stderr.contains("schemas[0].versions[0]: "), "{stderr}");
    assert!(
        stderr.contains(
            "/order.yaml is neither JSON nor YAML: did not find expected ',' or ']' at line 3 column 1, while parsing a flow sequence at line 2 column 13"
        ),
        "{stderr}"
    );
}

#[test]
fn patterns_and_transforms_may_be_yaml() {
    let event = r#"{"specversion":"1.0","id":"1","source":"/s","type":"a"}"#;
    let (code, stdout, stderr) =
        sluice(&["test-pattern", "--pattern", "{type: [a]}", "--event", event]);
    assert_eq!((code, stdout.trim()), (0, "match"), "{stderr}");

    let (code, _, stderr) = sluice(&["test-pattern", "--pattern", "{type: [a", "--event", event]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("invalid pattern: did not find expected ',' or ']' at line 2 column 1, while parsing a flow sequence at line 1 column 8"),
        "{stderr}"
    );

    let (code, stdout, stderr) = sluice(&[
        "transform",
        "--transform",
        "{form: CONSTANT, value: hi}",
        "--event",
        event,
    ]);
    assert_eq!((code, stdout.as_str()), (0, "hi"), "{stderr}");
}
