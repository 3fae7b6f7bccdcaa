//! Assertion and fixture helpers shared by the integration tests.
