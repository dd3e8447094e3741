//! Sync and watch against scripted fake servers on loopback.
