//! A provider's `Retry-After` is waited out as given: after a 429 that says "3 seconds", the
//! operator's next call to that provider comes no sooner, and the resource ends Ready. (Its own
//! backoff after a failure starts at 2 s: a client that ignored the header would come back early,
//! and so did one that waited it out only in the failed object's requeue, when a watch event on
//! that object reconciled it again at once.)

use std::time::Duration;

use serde_json::json;
use tenantline::api::{ProviderConfig, SubAccount};

use crate::harness::Env;
use crate::lifecycle::sub_account;

const RETRY_AFTER_SECS: u64 = 3;

#[tokio::test]
async fn a_429_with_retry_after_is_waited_out_before_the_next_call() {
    let env = Env::start("e2e-retry-after").await;
    let path = format!("{}/examples/vobiz/provider.yaml", env!("CARGO_MANIFEST_DIR"));
    env.apply_ok(&std::fs::read_to_string(path).unwrap());
    // The config is checked (without a provider call) before anything is made through it: nothing
    // else calls Vobiz while the SubAccount waits.
    env.wait_ready::<ProviderConfig>("vobiz").await;
    env.sim.clear_calls().await;
    // The first call of the SubAccount's first reconcile, whichever it is, is refused.
    env.sim
        .add_fault(
            json!({"provider": "vobiz", "fault": {"kind": "rateLimit", "retryAfter": RETRY_AFTER_SECS}, "count": 1}),
        )
        .await;
    env.apply_ok(&sub_account("paced", "vobiz", ""));
    env.wait_ready::<SubAccount>("paced").await;

    let arrivals = env.sim.arrivals().await.remove("vobiz").unwrap_or_default();
    assert!(arrivals.len() >= 2, "the refused call and at least one after it: {arrivals:?}");
    let waited = Duration::from_millis(arrivals[1] - arrivals[0]);
    eprintln!("retry-after: the call after the 429 came {:.2} s later", waited.as_secs_f64());
    // A lower bound only: when the retry comes after that is the machine's business. 50 ms for
    // the two clocks' granularity (the simulator counts whole milliseconds at arrival).
    assert!(
        waited + Duration::from_millis(50) >= Duration::from_secs(RETRY_AFTER_SECS),
        "the next call came {waited:?} after a 429 with Retry-After: {RETRY_AFTER_SECS}\n{}",
        env.operator.log_tail(30)
    );
    assert!(env.events().await.iter().any(|(reason, _)| reason == "RateLimited"), "{:?}", env.events().await);
    env.finish().await;
}
