//! Contract tests for the recoverbiz client.
