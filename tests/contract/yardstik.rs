//! Contract tests for the yardstik client.
