//! The handlers: each checks its request (with the crate, synchronously), hands an accepted
//! operation to the storage, and answers 202 once it is durable; `GET`s read the applied
//! state.

use std::collections::{HashMap, HashSet};

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use profile_traits::{GroupDefinition, Patch, Profile, ProfileId};
use serde_json::json;

use super::App;
use super::error::ApiError;
use super::extract::{ProfilePath, StorePath, json_body};
use crate::store::{Op, OpKind};

/// Parses and validates a patch-shaped body with the crate.
fn validated_patch(app: &App, body: &[u8]) -> Result<Patch, ApiError> {
    let patch = Patch::from_slice(body).map_err(|e| ApiError::rejected(&e))?;
    app.schema
        .validate(&patch)
        .map_err(|e| ApiError::rejected(&e))?;
    Ok(patch)
}

/// A fresh profile id: a UUIDv7, so ids sort in creation order (its first 48 bits are the
/// time in milliseconds, and the `uuid` crate keeps ids drawn in one millisecond increasing).
fn fresh_profile_id() -> ProfileId {
    ProfileId::from_bits(uuid::Uuid::now_v7().as_u128())
}

/// The current UTC time as the API's `date-time`, to the second: `2025-01-01T12:00:00Z`.
fn now_rfc3339() -> String {
    format!("{:.0}", jiff::Timestamp::now())
}

/// Hands `op` to the storage and waits until it is durable (503 if the write queue is full).
async fn accept(app: &App, op: Op, body: Vec<u8>) -> Result<(), ApiError> {
    let id = op.profile.clone();
    let slot = app.write_slot().await?;
    let seq = app
        .storage
        .accept(op, body)
        .await
        .map_err(|e| ApiError::from_store(e, &id))?;
    slot.durable(seq);
    Ok(())
}

/// Answers 404 unless profile `id` exists once every accepted operation is applied.
async fn existing(app: &App, id: &ProfileId) -> Result<(), ApiError> {
    let exists = app
        .storage
        .exists(id)
        .await
        .map_err(|e| ApiError::from_store(e, id))?;
    if exists {
        Ok(())
    } else {
        Err(ApiError::profile_not_found(id))
    }
}

/// `PATCH /v1/Stores/{storeId}/Profiles/{profileId}`: validate, make durable, answer 202;
/// the worker merges it later.
pub(super) async fn patch_profile(
    State(app): State<App>,
    ProfilePath(id): ProfilePath,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    existing(&app, &id).await?;
    let body = json_body(&app, &headers, body).await?;
    let patch = validated_patch(&app, &body)?;
    let op = Op {
        seq: 0,
        profile: id,
        kind: OpKind::Patch(patch),
    };
    accept(&app, op, body.to_vec()).await?;
    Ok(accepted(
        json!({"message": "Trait modifications accepted for processing."}),
    ))
}

/// `POST /v1/Stores/{storeId}/Profiles`: create a profile with a fresh id from `{"traits"}`.
pub(super) async fn create_profile(
    State(app): State<App>,
    _: StorePath,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let body = json_body(&app, &headers, body).await?;
    let traits = validated_patch(&app, &body)?;
    let id = fresh_profile_id();
    let op = Op {
        seq: 0,
        profile: id.clone(),
        kind: OpKind::Create {
            created_at: now_rfc3339(),
            traits,
        },
    };
    accept(&app, op, body.to_vec()).await?;
    Ok(accepted(json!({
        "id": id,
        "message": "Profile resolved and accepted for processing.",
    })))
}

/// `DELETE /v1/Stores/{storeId}/Profiles/{profileId}`.
pub(super) async fn delete_profile(
    State(app): State<App>,
    ProfilePath(id): ProfilePath,
) -> Result<Response, ApiError> {
    let op = Op {
        seq: 0,
        profile: id,
        kind: OpKind::Delete,
    };
    accept(&app, op, Vec::new()).await?;
    Ok(accepted(
        json!({"message": "Profile accepted for deletion."}),
    ))
}

/// `GET /v1/Stores/{storeId}/Profiles/{profileId}`: the profile as applied so far;
/// `?traitGroups=A,B` keeps only those groups.
pub(super) async fn fetch_profile(
    State(app): State<App>,
    ProfilePath(id): ProfilePath,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let wanted: Option<HashSet<&str>> = query
        .get("traitGroups")
        .map(|list| list.split(',').map(str::trim).collect());
    if let Some(list) = query.get("traitGroups")
        && (list.is_empty() || list.len() > 256)
    {
        return Err(ApiError::invalid(
            "`traitGroups` must be 1-256 characters: a comma-separated list of trait group names",
        ));
    }
    let profile = app
        .storage
        .profile(&id)
        .await
        .map_err(|e| ApiError::from_store(e, &id))?
        .ok_or_else(|| ApiError::profile_not_found(&id))?;
    Ok(match wanted {
        Some(wanted) => axum::Json(only_groups(&profile, &wanted)).into_response(),
        None => axum::Json(&*profile).into_response(),
    })
}

/// `profile` with only the trait groups named in `wanted`, in their order.
fn only_groups(profile: &Profile, wanted: &HashSet<&str>) -> Profile {
    let mut kept = Profile::new();
    kept.set_id(profile.id().cloned());
    kept.set_created_at(profile.created_at().map(str::to_owned));
    for (name, group) in profile.groups().filter(|(name, _)| wanted.contains(name)) {
        for (trait_name, value) in group.iter() {
            kept.insert(name, trait_name, value.clone());
        }
    }
    kept
}

/// `GET /v1/ControlPlane/Stores/{storeId}/TraitGroups`: the schema as the list response;
/// trait definitions only with `includeTraits=true`, as the API's default is `false`.
pub(super) async fn list_trait_groups(
    State(app): State<App>,
    _: StorePath,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let include_traits = query
        .get("includeTraits")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    // Serialized straight from the schema (not through `serde_json::Value`, whose map would
    // sort the traits) so that groups and traits keep their declared order.
    let groups: Vec<GroupOut<'_>> = app
        .schema
        .groups()
        .map(|group| GroupOut {
            group,
            include_traits,
        })
        .collect();
    let count = groups.len();
    Ok(axum::Json(TraitGroupList {
        trait_groups: groups,
        meta: Meta {
            key: "traitGroups",
            page_size: count,
        },
    })
    .into_response())
}

/// The ListTraitGroups response.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct TraitGroupList<'a> {
    trait_groups: Vec<GroupOut<'a>>,
    meta: Meta,
}

/// The list's `meta`.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Meta {
    key: &'static str,
    page_size: usize,
}

/// A trait group of the list, with or without its trait definitions.
struct GroupOut<'a> {
    group: &'a GroupDefinition,
    include_traits: bool,
}

impl serde::Serialize for GroupOut<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        if self.include_traits {
            return self.group.serialize(serializer);
        }
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("displayName", self.group.name())?;
        if let Some(description) = self.group.description() {
            map.serialize_entry("description", description)?;
        }
        if let Some(version) = self.group.version() {
            map.serialize_entry("version", &version)?;
        }
        map.end()
    }
}

/// A 202 answer with a JSON body.
fn accepted(body: serde_json::Value) -> Response {
    (StatusCode::ACCEPTED, axum::Json(body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_ids_sort_in_creation_order() {
        let ids: Vec<ProfileId> = (0..10_000).map(|_| fresh_profile_id()).collect();
        assert!(ids.windows(2).all(|pair| pair[0] < pair[1]));
        // A UUIDv7 in the TTID form: `[0-7][0-9a-z]{25}` after the prefix.
        assert!(ids[0].as_str().parse::<ProfileId>().is_ok());
    }

    #[test]
    fn timestamps_are_rfc3339_to_the_second() {
        let now = now_rfc3339();
        assert_eq!(now.len(), "2025-01-01T12:00:00Z".len(), "{now}");
        assert!(now.parse::<jiff::Timestamp>().is_ok(), "{now}");
    }
}
