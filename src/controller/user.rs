//! The `User` reconciler: a user's namespace, RBAC, config map, storage, clones and quota.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::reconcile::{Context, Owned, run_controller};
use homestead_core::config::Config;
use homestead_core::desired::{
    DesiredObjects, DesiredObjectsError, OwnerKind, SecretSources, user_objects,
};
use homestead_core::directory::user_namespace;
use homestead_core::resources::{ResourceStatus, User};

impl Owned for User {
    const KIND: OwnerKind = OwnerKind::User;

    fn status(&self) -> Option<&ResourceStatus> {
        self.status.as_ref()
    }

    fn plan(
        &self,
        ctx: &Context,
        sources: &SecretSources,
    ) -> Result<DesiredObjects, DesiredObjectsError> {
        user_objects(&ctx.config, self, sources)
    }

    fn namespace_name(&self, config: &Config) -> Option<String> {
        user_namespace(config, &self.spec)
            .ok()
            .or_else(|| self.status.as_ref().and_then(|s| s.namespace.clone()))
    }
}

/// Reconciles Users until `token` is cancelled.
pub async fn run(ctx: Arc<Context>, token: CancellationToken) {
    run_controller::<User>(ctx, token, |c| c).await;
}
