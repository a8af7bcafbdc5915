//! Contract tests for the agentphone client.
