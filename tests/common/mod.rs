//! Shared test support: `helpers` (assertion and fixture helpers) and `strategies`
//! (proptest generators). Each test binary uses only part of it.
#![allow(dead_code, unreachable_pub)]

pub mod helpers;
pub mod strategies;
