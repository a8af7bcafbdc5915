//! Shared HTTP plumbing: base URL, auth headers, JSON, timeouts, the token bucket, rate-limit
//! headers, pagination and error mapping — once for every provider.

use super::{Connection, Result};

/// A provider account's HTTP client. Cheap to clone; clones share the token bucket.
#[derive(Clone)]
pub struct HttpClient {}

impl HttpClient {
    pub fn new(_connection: &Connection) -> Result<Self> {
        todo!("provider engineer")
    }
}
