//! tenantline-sim: a local simulator of the five provider APIs tenantline manages.
