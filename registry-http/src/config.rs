//! What a [`Router`](crate::Router) can be told beyond its store.

use std::fmt;
use std::sync::Arc;

use registry_core::{ForeignUrlPolicy, ManifestLimits};

use crate::auth::{AllowAll, Authorizer};
use crate::namespaces::Namespaces;

/// Router settings. Start from [`RouterConfig::default`] and change fields
/// or chain the `with_*` methods.
#[derive(Clone)]
#[non_exhaustive]
pub struct RouterConfig {
    /// Where the `urls` of non-distributable (foreign) layers in pushed
    /// manifests may point. By default ([`ForeignUrlPolicy::default`]) none:
    /// a manifest whose foreign layers have `urls` is refused with
    /// `MANIFEST_INVALID`, as CNCF distribution refuses it without
    /// `validation.manifests.urls` settings. (`urls` anywhere else are
    /// always refused.)
    pub manifest_urls: ForeignUrlPolicy,
    /// A path prefix put in front of every URL the router sends back
    /// (`Location`, `Link`), for a router mounted under a prefix whose
    /// server strips it before the router sees the request (axum's
    /// `nest_service`, a reverse proxy). `""` by default; written without a
    /// trailing `/`, e.g. `/registry`.
    pub public_prefix: String,
    /// Who may do what. [`AllowAll`] by default.
    pub authorizer: Arc<dyn Authorizer>,
    /// The store's names for requested names (a mirror's prefixes and
    /// `?ns=`), asked before authorization. `None` by default: names are
    /// the store's as requested.
    pub namespaces: Option<Arc<dyn Namespaces>>,
}

impl RouterConfig {
    /// The default manifest size limit, [`ManifestLimits::DEFAULT_MAX_SIZE`],
    /// under the name servers sizing their own budgets by it have used. The
    /// limit itself is the store's
    /// ([`ManifestStore::manifest_limits`](registry_core::ManifestStore::manifest_limits)):
    /// the router reads manifest bodies up to it (413 before the body is
    /// read when `Content-Length` says more, or as soon as it is passed).
    pub const DEFAULT_MANIFEST_MAX_SIZE: usize = ManifestLimits::DEFAULT_MAX_SIZE;

    /// Set [`manifest_urls`](Self::manifest_urls).
    pub fn with_manifest_urls(mut self, policy: ForeignUrlPolicy) -> Self {
        self.manifest_urls = policy;
        self
    }

    /// Set [`public_prefix`](Self::public_prefix). A trailing `/` is
    /// dropped.
    pub fn with_public_prefix(mut self, prefix: impl Into<String>) -> Self {
        let mut prefix = prefix.into();
        while prefix.ends_with('/') {
            prefix.pop();
        }
        self.public_prefix = prefix;
        self
    }

    /// Set [`authorizer`](Self::authorizer).
    pub fn with_authorizer(mut self, authorizer: Arc<dyn Authorizer>) -> Self {
        self.authorizer = authorizer;
        self
    }

    /// Set [`namespaces`](Self::namespaces).
    pub fn with_namespaces(mut self, namespaces: Arc<dyn Namespaces>) -> Self {
        self.namespaces = Some(namespaces);
        self
    }

    /// The prefix without a trailing `/`, whichever way it was set.
    pub(crate) fn prefix(&self) -> &str {
        self.public_prefix.trim_end_matches('/')
    }
}

impl Default for RouterConfig {
    fn default() -> Self {
        RouterConfig {
            manifest_urls: ForeignUrlPolicy::default(),
            public_prefix: String::new(),
            authorizer: Arc::new(AllowAll),
            namespaces: None,
        }
    }
}

impl fmt::Debug for RouterConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RouterConfig")
            .field("manifest_urls", &self.manifest_urls)
            .field("public_prefix", &self.public_prefix)
            .field("namespaces", &self.namespaces)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder() {
        let c = RouterConfig::default().with_public_prefix("/registry/");
        assert_eq!(c.public_prefix, "/registry");
        let mut c = RouterConfig::default();
        assert_eq!(RouterConfig::DEFAULT_MANIFEST_MAX_SIZE, 4 * 1024 * 1024);
        c.public_prefix = "/x/".into();
        assert_eq!(c.prefix(), "/x");
    }
}
