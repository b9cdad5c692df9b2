//! The `Session` reconciler: a session's namespace, config map, workflow account, member
//! binding, artifact secret, data volume and one private claim per member.

use std::collections::BTreeMap;
use std::sync::Arc;

use kube::api::Api;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use tokio_util::sync::CancellationToken;

use super::reconcile::{Context, Owned, run_controller};
use homestead_core::config::Config;
use homestead_core::desired::{
    DesiredObjects, DesiredObjectsError, OwnerKind, SecretSources, session_objects,
};
use homestead_core::directory::session_namespace;
use homestead_core::names::object_name;
use homestead_core::resources::{ResourceStatus, Session, User, UserSpec};

impl Owned for Session {
    const KIND: OwnerKind = OwnerKind::Session;

    fn status(&self) -> Option<&ResourceStatus> {
        self.status.as_ref()
    }

    fn plan(
        &self,
        ctx: &Context,
        sources: &SecretSources,
    ) -> Result<DesiredObjects, DesiredObjectsError> {
        let members = member_users(ctx, self);
        session_objects(&ctx.config, self, &members, sources)
    }

    fn namespace_name(&self, config: &Config) -> Option<String> {
        Some(session_namespace(config, &self.spec))
    }
}

/// The Users of a session's members, from the cache, by username. A User is found by its
/// object name (the mapped username) and must carry exactly that username.
fn member_users(ctx: &Context, session: &Session) -> BTreeMap<String, UserSpec> {
    session
        .spec
        .members
        .iter()
        .filter_map(|member| {
            let name = object_name(member).ok()?;
            let user = ctx.users.get(&ObjectRef::new(&name))?;
            (user.spec.username == *member).then(|| (member.clone(), user.spec.clone()))
        })
        .collect()
}

/// Reconciles Sessions until `token` is cancelled. A User appearing or changing re-syncs
/// the sessions it is a member of (its private claim depends on it).
pub async fn run(ctx: Arc<Context>, token: CancellationToken) {
    let client = ctx.client.clone();
    run_controller::<Session>(ctx, token, move |controller| {
        let sessions = controller.store();
        controller.watches(
            Api::<User>::all(client),
            watcher::Config::default(),
            move |user: User| {
                sessions
                    .state()
                    .iter()
                    .filter(|s| s.spec.members.contains(&user.spec.username))
                    .map(|s| ObjectRef::from_obj(&**s))
                    .collect::<Vec<_>>()
            },
        )
    })
    .await;
}
