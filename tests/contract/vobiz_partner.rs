//! Contract tests for the vobiz_partner client.
