//! The compatibility table of docs/schemas.md: each common schema change against each
//! mode, as `sluice check` and `POST /api/v1/schemas/{name}/versions` decide it.

use serde_json::{json, Value};
use sluice::schema::compat::check;
use sluice::schema::Compatibility::{self, *};

fn base(closed: bool) -> Value {
    let mut s = json!({
        "type": "object",
        "required": ["id"],
        "properties": {
            "id": {"type": "string"},
            "amount": {"type": "integer"},
            "status": {"type": "string", "enum": ["new", "paid", "shipped"]}
        }
    });
    if closed {
        s["additionalProperties"] = json!(false);
    }
    s
}

fn change(name: &str, closed: bool) -> Value {
    let mut s = base(closed);
    match name {
        "unchanged" => {}
        "add optional field" => s["properties"]["note"] = json!({"type": "string"}),
        "add required field" => {
            s["properties"]["currency"] = json!({"type": "string"});
            s["required"] = json!(["id", "currency"]);
        }
        "remove field" => {
            s["properties"].as_object_mut().unwrap().remove("amount");
        }
        "widen type" => s["properties"]["amount"] = json!({"type": ["number", "null"]}),
        "narrow enum" => s["properties"]["status"]["enum"] = json!(["new", "paid"]),
        other => panic!("{other}"),
    }
    s
}

/// (change, closed content model, backward, forward): full is both, none always passes.
const TABLE: &[(&str, bool, bool, bool)] = &[
    ("unchanged", false, true, true),
    ("add optional field", false, false, true),
    ("add optional field", true, true, false),
    ("add required field", false, false, true),
    ("add required field", true, false, false),
    ("remove field", false, true, false),
    ("remove field", true, false, true),
    ("widen type", false, true, false),
    ("widen type", true, true, false),
    ("narrow enum", false, false, true),
    ("narrow enum", true, false, true),
];

#[test]
fn each_change_against_each_mode() {
    let mut wrong = Vec::new();
    for &(name, closed, backward, forward) in TABLE {
        let old = base(closed);
        let new = change(name, closed);
        let expect: [(Compatibility, bool); 7] = [
            (Backward, backward),
            (BackwardTransitive, backward),
            (Forward, forward),
            (ForwardTransitive, forward),
            (Full, backward && forward),
            (FullTransitive, backward && forward),
            (None, true),
        ];
        for (mode, ok) in expect {
            let got = check(mode, &[&old], &new);
            if got.is_ok() != ok {
                wrong.push(format!(
                    "{name} (closed: {closed}) under {}: expected {}, got {got:?}",
                    mode.as_str(),
                    if ok { "compatible" } else { "incompatible" }
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn reasons_name_the_field_and_the_change() {
    let old = base(false);
    let reasons = check(Backward, &[&old], &change("add required field", false)).unwrap_err();
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert!(
        reasons.iter().any(|r| r.contains(
            "/properties/currency: required by the new version but not by the previous version"
        )),
        "{reasons:?}"
    );
    let reasons = check(Backward, &[&old], &change("narrow enum", false)).unwrap_err();
    assert!(
        reasons[0].contains("/properties/status: value \"shipped\" allowed by the previous version is refused by the new version"),
        "{reasons:?}"
    );
    let reasons = check(Forward, &[&old], &change("widen type", false)).unwrap_err();
    assert!(
        reasons[0].contains("/properties/amount: the new version allows type number, null; the previous version allows only integer"),
        "{reasons:?}"
    );
}

#[test]
fn transitive_modes_check_every_earlier_version() {
    // v2 narrowed the enum (accepted at the time under `none`); v3 keeps v2's values.
    let v1 = base(false);
    let v2 = change("narrow enum", false);
    let mut v3 = v2.clone();
    v3["properties"]["note"] = json!(true);
    assert!(check(Backward, &[&v1, &v2], &v3).is_ok());
    let reasons = check(BackwardTransitive, &[&v1, &v2], &v3).unwrap_err();
    assert!(reasons[0].starts_with("version 1 -> new"), "{reasons:?}");
}

#[test]
fn what_the_checker_does_not_understand_is_not_called_compatible() {
    let old = json!({"type": "string"});
    let new = json!({"type": "string", "not": {"const": "x"}});
    let reasons = check(Backward, &[&old], &new).unwrap_err();
    assert!(
        reasons[0].contains("cannot prove compatible: `not`"),
        "{reasons:?}"
    );
}
