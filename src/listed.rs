//! A reflector's store that many reconciles wait on at once.

use std::hash::Hash;
use std::ops::Deref;
use std::sync::Arc;

use kube::Resource;
use kube::runtime::reflector::Store;
use tokio::sync::OnceCell;

/// `Store::wait_until_ready` keeps a single waker (its oneshot receiver's): of several tasks
/// waiting at once, only the last to poll is woken by the first listing, and the others wait for
/// ever (seen as SubAccounts whose first reconcile never ended). Here one task at a time waits on
/// the store; the others wait on a `OnceCell`, which wakes every waiter.
pub struct Listed<K: Resource + Clone + 'static>
where
    K::DynamicType: Eq + Hash + Clone,
{
    store: Store<K>,
    ready: Arc<OnceCell<()>>,
}

impl<K: Resource + Clone + 'static> Listed<K>
where
    K::DynamicType: Eq + Hash + Clone,
{
    pub fn new(store: Store<K>) -> Self {
        Self { store, ready: Arc::default() }
    }

    /// The store, once its watch has listed everything (or has ended).
    pub async fn ready(&self) -> &Store<K> {
        self.ready
            .get_or_init(|| async {
                let _ = self.store.wait_until_ready().await;
            })
            .await;
        &self.store
    }
}

impl<K: Resource + Clone + 'static> Deref for Listed<K>
where
    K::DynamicType: Eq + Hash + Clone,
{
    type Target = Store<K>;

    fn deref(&self) -> &Store<K> {
        &self.store
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::runtime::reflector::store;
    use kube::runtime::watcher::Event;

    use super::*;

    #[tokio::test]
    async fn every_waiter_is_woken_by_the_first_listing() {
        let (reader, mut writer) = store::<ConfigMap>();
        let listed = Arc::new(Listed::new(reader));
        let waiters: Vec<_> = (0..8)
            .map(|_| {
                let listed = listed.clone();
                tokio::spawn(async move { listed.ready().await.state().len() })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(50)).await;
        writer.apply_watcher_event(&Event::Init);
        writer.apply_watcher_event(&Event::InitDone);
        for waiter in waiters {
            let listed = tokio::time::timeout(Duration::from_secs(5), waiter).await;
            assert_eq!(listed.expect("a waiter was never woken").unwrap(), 0);
        }
    }
}
