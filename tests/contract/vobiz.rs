//! Contract tests for the vobiz client.
