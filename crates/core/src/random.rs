//! Operating-system randomness for identifiers and secrets.
//!
//! Kept in one place so that every caller maps the (rare) failure of the OS random source to the
//! same error instead of panicking.

/// The operating system could not supply random bytes.
#[derive(Debug, thiserror::Error)]
#[error("the operating system random source failed: {0}")]
pub struct RandomnessError(String);

/// Fills `dest` from the operating system's cryptographically secure random source.
pub fn fill(dest: &mut [u8]) -> Result<(), RandomnessError> {
    getrandom::fill(dest).map_err(|e| RandomnessError(e.to_string()))
}
