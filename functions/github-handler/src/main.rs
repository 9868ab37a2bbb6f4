//! `github-handler`: turns a GitHub `push` or `issues` webhook into a short summary.
//!
//! It takes the event in any of the shapes it can arrive in: a CloudEvent (what
//! Sluice's `function` target sends: `type: com.github.push`, the webhook body in
//! `data`), an EventBridge event (what AWS Lambda gets from a rule: `detail-type` and
//! `detail`), or the bare webhook body. The result is JSON meant to be chained onto a
//! bus (`on_success`) or posted to a chat; other GitHub events answer `null`, which
//! Sluice chains nothing for.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::{json, Value};

/// The GitHub event name (`push`, `issues`, ...) and the webhook body.
fn unwrap(event: &Value) -> (Option<String>, &Value) {
    if event.get("specversion").is_some() {
        let kind = event["type"]
            .as_str()
            .map(|t| t.strip_prefix("com.github.").unwrap_or(t).to_string());
        return (kind, &event["data"]);
    }
    if let (Some(kind), Some(detail)) = (event["detail-type"].as_str(), event.get("detail")) {
        return (Some(kind.to_string()), detail);
    }
    // A bare body: recognised by its shape.
    let kind = if event.get("pusher").is_some() && event.get("ref").is_some() {
        Some("push".to_string())
    } else if event.get("issue").is_some() && event.get("comment").is_none() {
        Some("issues".to_string())
    } else {
        None
    };
    (kind, event)
}

fn text<'a>(v: &'a Value, pointer: &str) -> Result<&'a str, Error> {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("the webhook body has no string at {pointer}").into())
}

fn push(body: &Value) -> Result<Value, Error> {
    let repository = text(body, "/repository/full_name")?;
    let git_ref = text(body, "/ref")?;
    let pusher = text(body, "/pusher/name")?;
    let commits = body["commits"].as_array().map_or(&[][..], Vec::as_slice);
    let branch = git_ref
        .strip_prefix("refs/heads/")
        .or_else(|| git_ref.strip_prefix("refs/tags/"))
        .unwrap_or(git_ref);
    // The first line of each commit message: what a chat notification shows.
    let messages: Vec<&str> = commits
        .iter()
        .filter_map(|c| c["message"].as_str())
        .map(|m| m.lines().next().unwrap_or(""))
        .collect();
    let plural = if commits.len() == 1 { "" } else { "s" };
    let summary = if body["deleted"].as_bool() == Some(true) {
        format!("{pusher} deleted {branch} in {repository}")
    } else {
        format!(
            "{pusher} pushed {} commit{plural} to {repository}@{branch}",
            commits.len()
        )
    };
    Ok(json!({
        "kind": "push",
        "repository": repository,
        "ref": git_ref,
        "branch": branch,
        "pusher": pusher,
        "commits": commits.len(),
        "head": body.pointer("/head_commit/id").and_then(Value::as_str),
        "messages": messages,
        "compare": body["compare"].as_str(),
        "summary": summary,
    }))
}

fn issues(body: &Value) -> Result<Value, Error> {
    let repository = text(body, "/repository/full_name")?;
    let action = text(body, "/action")?;
    let number = body
        .pointer("/issue/number")
        .and_then(Value::as_u64)
        .ok_or("the webhook body has no number at /issue/number")?;
    let title = text(body, "/issue/title")?;
    let actor = text(body, "/sender/login").or_else(|_| text(body, "/issue/user/login"))?;
    Ok(json!({
        "kind": "issues",
        "action": action,
        "repository": repository,
        "number": number,
        "title": title,
        "actor": actor,
        "url": body.pointer("/issue/html_url").and_then(Value::as_str),
        "labels": body.pointer("/issue/labels").and_then(Value::as_array).map(|labels| {
            labels.iter().filter_map(|l| l["name"].as_str()).collect::<Vec<_>>()
        }),
        "summary": format!("{actor} {action} issue #{number} in {repository}: {title}"),
    }))
}

async fn handle(event: LambdaEvent<Value>) -> Result<Value, Error> {
    let (kind, body) = unwrap(&event.payload);
    match kind.as_deref() {
        Some("push") => push(body),
        Some("issues") => issues(body),
        _ => Ok(Value::Null),
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(handle)).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use lambda_runtime::Context;

    fn push_body() -> Value {
        json!({
            "ref": "refs/heads/main",
            "compare": "https://github.com/acme/shop/compare/a...b",
            "repository": {"full_name": "acme/shop"},
            "pusher": {"name": "octocat"},
            "head_commit": {"id": "b2"},
            "commits": [
                {"id": "b1", "message": "Fix the cart\n\nLong text"},
                {"id": "b2", "message": "Bump version"}
            ]
        })
    }

    async fn run(payload: Value) -> Value {
        handle(LambdaEvent::new(payload, Context::default()))
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn summarises_a_push_as_a_cloudevent() {
        let out = run(json!({
            "specversion": "1.0", "id": "d1", "source": "https://github.com/acme",
            "type": "com.github.push", "data": push_body()
        }))
        .await;
        assert_eq!(out["summary"], "octocat pushed 2 commits to acme/shop@main");
        assert_eq!(out["messages"], json!(["Fix the cart", "Bump version"]));
        assert_eq!(out["head"], "b2");
        assert_eq!(out["branch"], "main");
    }

    #[tokio::test]
    async fn reads_eventbridge_and_bare_shapes_alike() {
        let eb =
            run(json!({"detail-type": "push", "source": "github", "detail": push_body()})).await;
        let bare = run(push_body()).await;
        assert_eq!(eb, bare);
        assert_eq!(bare["commits"], 2);
    }

    #[tokio::test]
    async fn summarises_an_issue() {
        let out = run(json!({
            "specversion": "1.0", "id": "d2", "source": "s", "type": "com.github.issues",
            "data": {
                "action": "opened",
                "repository": {"full_name": "acme/shop"},
                "sender": {"login": "hubot"},
                "issue": {"number": 12, "title": "Cart is empty", "html_url": "https://github.com/acme/shop/issues/12",
                          "labels": [{"name": "bug"}], "user": {"login": "hubot"}}
            }
        }))
        .await;
        assert_eq!(
            out["summary"],
            "hubot opened issue #12 in acme/shop: Cart is empty"
        );
        assert_eq!(out["labels"], json!(["bug"]));
    }

    #[tokio::test]
    async fn ignores_other_events() {
        let out = run(json!({"specversion": "1.0", "id": "3", "source": "s",
                             "type": "com.github.ping", "data": {"zen": "Keep it simple."}}))
        .await;
        assert_eq!(out, Value::Null);
    }

    #[tokio::test]
    async fn a_malformed_push_is_an_error() {
        let mut body = push_body();
        body["repository"] = json!({});
        let err = handle(LambdaEvent::new(
            json!({"detail-type": "push", "detail": body}),
            Context::default(),
        ))
        .await
        .unwrap_err();
        assert!(err.to_string().contains("/repository/full_name"), "{err}");
    }
}
