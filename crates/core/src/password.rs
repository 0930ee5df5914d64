//! Passwords of local people: Argon2id hashing and verification.
//!
//! gatehouse stores only an Argon2id hash of a password, in the PHC string format
//! (`$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`), so the parameters travel with the hash and
//! can be raised later without invalidating existing hashes. The parameters are OWASP's
//! recommended minimum for Argon2id (19 MiB of memory, 2 iterations, 1 lane). Verification is
//! done by the `argon2` crate, which compares the computed hash in constant time.
//!
//! A sign-in for a username that does not exist still costs one Argon2id verification (against
//! [`dummy_hash`]), so the time a refusal takes does not tell an attacker which usernames
//! exist.

use std::sync::OnceLock;

use argon2::{Algorithm, Argon2, Params, PasswordHasher as _, PasswordVerifier as _, Version};
use zeroize::Zeroizing;

use crate::random;

/// Memory cost in KiB (OWASP: 19 MiB).
pub const MEMORY_KIB: u32 = 19 * 1024;
/// Iterations (OWASP: 2 with 19 MiB).
pub const ITERATIONS: u32 = 2;
/// Lanes (OWASP: 1).
pub const LANES: u32 = 1;

/// Shortest password accepted for a local person (NIST SP 800-63B asks for at least 8; a
/// release gate's approvers get a little more).
pub const MIN_LENGTH: usize = 12;
/// Longest password accepted, in bytes: long enough for any passphrase, short enough that a
/// request cannot make the server hash megabytes.
pub const MAX_BYTES: usize = 1024;

const SALT_BYTES: usize = 16;

/// Why a password cannot be set or checked.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// The password does not meet the length rules.
    #[error("the password is too weak: {reason}")]
    Weak { reason: String },
    /// The stored hash is not a PHC string this build can verify.
    #[error("the stored password hash cannot be read: {reason}")]
    CorruptHash { reason: String },
    /// Hashing failed (e.g. the random source for the salt).
    #[error("cannot hash the password: {reason}")]
    Hashing { reason: String },
}

/// Checks the length rules (at least [`MIN_LENGTH`] characters, at most [`MAX_BYTES`] bytes,
/// no control characters, which would only come from a copy-paste accident).
pub fn check_policy(password: &str) -> Result<(), PasswordError> {
    let weak = |reason: String| PasswordError::Weak { reason };
    if password.chars().count() < MIN_LENGTH {
        return Err(weak(format!("use at least {MIN_LENGTH} characters")));
    }
    if password.len() > MAX_BYTES {
        return Err(weak(format!("use at most {MAX_BYTES} bytes")));
    }
    if password.chars().any(char::is_control) {
        return Err(weak("control characters are not allowed".into()));
    }
    Ok(())
}

fn hasher() -> Result<Argon2<'static>, PasswordError> {
    let params =
        Params::new(MEMORY_KIB, ITERATIONS, LANES, None).map_err(|e| PasswordError::Hashing {
            reason: e.to_string(),
        })?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Hashes `password` with Argon2id and a fresh random salt; returns the PHC string to store.
///
/// Checks [`check_policy`] first, so a weak password is never stored.
pub fn hash(password: &str) -> Result<String, PasswordError> {
    check_policy(password)?;
    hash_unchecked(password.as_bytes())
}

fn hash_unchecked(password: &[u8]) -> Result<String, PasswordError> {
    let mut salt = [0u8; SALT_BYTES];
    random::fill(&mut salt).map_err(|e| PasswordError::Hashing {
        reason: e.to_string(),
    })?;
    let hashed = hasher()?
        .hash_password_with_salt(password, &salt)
        .map_err(|e| PasswordError::Hashing {
            reason: e.to_string(),
        })?;
    Ok(hashed.to_string())
}

/// Whether `password` matches the stored PHC string `stored` (constant-time comparison inside
/// the `argon2` crate). A hash that cannot be parsed is an error, not a mismatch, so a corrupt
/// record is reported instead of silently locking its owner out.
pub fn verify(password: &str, stored: &str) -> Result<bool, PasswordError> {
    if !stored.starts_with("$argon2id$") {
        return Err(PasswordError::CorruptHash {
            reason: "not an Argon2id PHC string".into(),
        });
    }
    if password.len() > MAX_BYTES {
        // Still spend the time of a verification, so the refusal is not faster.
        let _ = hasher()?.verify_password(b"", stored);
        return Ok(false);
    }
    match hasher()?.verify_password(password.as_bytes(), stored) {
        Ok(()) => Ok(true),
        Err(argon2::password_hash::Error::PasswordInvalid) => Ok(false),
        Err(e) => Err(PasswordError::CorruptHash {
            reason: e.to_string(),
        }),
    }
}

/// A valid Argon2id hash of a random password nobody knows, computed once per process, with
/// the same parameters as real hashes (so verifying against it costs the same time).
pub fn dummy_hash() -> Result<&'static str, PasswordError> {
    static DUMMY: OnceLock<String> = OnceLock::new();
    if let Some(hash) = DUMMY.get() {
        return Ok(hash);
    }
    let mut secret = Zeroizing::new([0u8; 32]);
    random::fill(secret.as_mut()).map_err(|e| PasswordError::Hashing {
        reason: e.to_string(),
    })?;
    let hash = hash_unchecked(secret.as_ref())?;
    Ok(DUMMY.get_or_init(|| hash))
}

/// Checks a sign-in: `stored` is the person's hash, or `None` when the username is unknown,
/// disabled or has no password. Always performs exactly one Argon2id verification, so the
/// answer takes the same time whether or not the username exists.
pub fn verify_sign_in(password: &str, stored: Option<&str>) -> Result<bool, PasswordError> {
    match stored {
        Some(stored) => verify(password, stored),
        None => {
            let _ = verify(password, dummy_hash()?);
            Ok(false)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_verifies_and_uses_argon2id_with_owasp_parameters() {
        let stored = hash("correct horse battery").unwrap();
        assert!(
            stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{stored}"
        );
        assert!(!stored.contains("correct horse"));
        assert!(verify("correct horse battery", &stored).unwrap());
        assert!(!verify("correct horse batterY", &stored).unwrap());
        assert!(!verify("", &stored).unwrap());
    }

    #[test]
    fn two_hashes_of_one_password_differ_by_salt() {
        let a = hash("correct horse battery").unwrap();
        let b = hash("correct horse battery").unwrap();
        assert_ne!(a, b);
        assert!(verify("correct horse battery", &b).unwrap());
    }

    #[test]
    fn weak_passwords_are_refused() {
        for bad in ["", "short", "elevenchars", "with\ncontrol char"] {
            assert!(
                matches!(hash(bad), Err(PasswordError::Weak { .. })),
                "{bad:?}"
            );
        }
        assert!(matches!(
            hash(&"x".repeat(MAX_BYTES + 1)),
            Err(PasswordError::Weak { .. })
        ));
        check_policy("twelve chars").unwrap();
    }

    #[test]
    fn corrupt_hash_is_an_error_not_a_mismatch() {
        assert!(matches!(
            verify("whatever password", "plaintext"),
            Err(PasswordError::CorruptHash { .. })
        ));
        assert!(matches!(
            verify("whatever password", "$argon2id$v=19$garbage"),
            Err(PasswordError::CorruptHash { .. })
        ));
    }

    #[test]
    fn unknown_user_is_refused_after_a_real_verification() {
        assert!(!verify_sign_in("correct horse battery", None).unwrap());
        let dummy = dummy_hash().unwrap();
        assert!(dummy.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        // Same process, same dummy: computed once.
        assert_eq!(dummy, dummy_hash().unwrap());
    }

    #[test]
    fn overlong_password_is_a_mismatch() {
        let stored = hash("correct horse battery").unwrap();
        assert!(!verify(&"y".repeat(MAX_BYTES + 10), &stored).unwrap());
    }
}
