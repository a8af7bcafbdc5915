//! A provider's routes, registered in their canonical (documented) form and, as an alias, with
//! the trailing slash toggled; call counts and fault rules always use the canonical template.

use axum::Router;
use axum::routing::MethodRouter;

pub struct Routes<S> {
    pub router: Router<S>,
    pub canonical: Vec<String>,
}

impl<S: Clone + Send + Sync + 'static> Default for Routes<S> {
    fn default() -> Self {
        Self::new()
    }
}

impl<S: Clone + Send + Sync + 'static> Routes<S> {
    pub fn new() -> Self {
        Routes { router: Router::new(), canonical: Vec::new() }
    }

    pub fn route(mut self, path: &str, mr: MethodRouter<S>) -> Self {
        self.router = self.router.route(path, mr.clone()).route(&toggle_slash(path), mr);
        self.canonical.push(path.to_string());
        self
    }
}

/// `/a/` ↔ `/a`
pub fn toggle_slash(p: &str) -> String {
    match p.strip_suffix('/') {
        Some(s) => s.to_string(),
        None => format!("{p}/"),
    }
}
