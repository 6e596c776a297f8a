//! An organisation renamed: the tree and its roll-ups show the name of today, as projected and
//! after a replay; a resend records nothing, the same rename id with another name is a conflict.

use serde_json::json;
use uuid::Uuid;

use crate::helpers::TestApp;

#[tokio::test]
async fn a_renamed_organisation_shows_its_new_name_and_keeps_it_through_a_replay() {
    let app = TestApp::spawn().await;
    app.seed_member("2018-01-01").await;
    let rename = json!({"rename_id": Uuid::new_v4(), "name": "福州市委组织部"});
    let (status, renamed) = app.post("/v1/orgs/fz/renames", &rename).await;
    assert_eq!(status, 201, "{renamed}");
    assert_eq!(renamed["sequence"], 2);
    let (status, again) = app.post("/v1/orgs/fz/renames", &rename).await;
    assert_eq!(
        (status, &again["sequence"]),
        (201, &json!(2)),
        "a resend: {again}"
    );
    let events = app.total_events().await;
    let mut other = rename.clone();
    other["name"] = json!("别的名字");
    for (path, body, expected) in [
        ("/v1/orgs/fz/renames", other, 409),
        ("/v1/orgs/nowhere/renames", rename.clone(), 404),
        (
            "/v1/orgs/fz/renames",
            json!({"rename_id": Uuid::new_v4(), "name": ""}),
            422,
        ),
    ] {
        let (status, answer) = app.post(path, &body).await;
        assert_eq!(status, expected, "{path} {body}: {answer}");
    }
    assert_eq!(app.total_events().await, events, "nothing recorded");

    for when in ["as projected", "after a replay"] {
        app.views(when).await;
        let (status, node) = app.get("/v1/orgs/fz").await;
        assert_eq!(status, 200, "{node}");
        assert_eq!(node["name"], "福州市委组织部", "{when}: {node}");
    }
    // Every name, and since when.
    let (status, names) = app.get("/v1/orgs/fz/names").await;
    assert_eq!(status, 200, "{names}");
    let shown: Vec<&str> = names
        .as_array()
        .expect("names")
        .iter()
        .map(|n| n["name"].as_str().expect("a name"))
        .collect();
    assert_eq!(shown, ["福州", "福州市委组织部"]);
    assert!(
        names[0]["since"].as_str() < names[1]["since"].as_str(),
        "{names}"
    );
    let (status, _) = app.get("/v1/orgs/nowhere/names").await;
    assert_eq!(status, 404);
}
