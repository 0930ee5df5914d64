//! DSSE (Dead Simple Signing Envelope) signature verification.
//!
//! A DSSE signature covers the pre-authentication encoding (PAE) of the payload type and the
//! raw payload, never the JSON of the envelope, so the payload is verified byte for byte as it
//! was signed. Keys are Ed25519, ECDSA P-256 (SHA-256) or RSA (PKCS#1 v1.5 or PSS, SHA-256)
//! public keys, loaded from PEM (SubjectPublicKeyInfo) — the formats cosign, in-toto and
//! witness emit.

use ed25519_dalek::pkcs8::DecodePublicKey as _;
use p256::ecdsa::signature::Verifier as _;
use serde::Serialize;

use crate::error::EvidenceError;

/// A decoded DSSE envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DsseEnvelope {
    pub payload_type: String,
    /// The payload bytes (base64-decoded).
    pub payload: Vec<u8>,
    pub signatures: Vec<DsseSignature>,
}

/// One signature of an envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DsseSignature {
    pub keyid: Option<String>,
    /// The signature bytes (base64-decoded).
    pub sig: Vec<u8>,
}

/// Signature algorithm of a trusted key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyAlgorithm {
    Ed25519,
    EcdsaP256Sha256,
    /// RSASSA-PKCS1-v1_5 or RSASSA-PSS with SHA-256.
    RsaSha256,
}

#[derive(Debug, Clone)]
enum PublicKey {
    Ed25519(ed25519_dalek::VerifyingKey),
    EcdsaP256(p256::ecdsa::VerifyingKey),
    Rsa(rsa::PublicKey),
}

/// A public key evidence signatures are checked against (e.g. a key from the policy pack).
#[derive(Debug, Clone)]
pub struct TrustedKey {
    id: String,
    key: PublicKey,
}

impl TrustedKey {
    /// Loads a PEM `PUBLIC KEY` (SubjectPublicKeyInfo) holding an Ed25519 or P-256 key.
    /// `id` names the key in results and errors (a file name, a pack key id).
    pub fn from_pem(id: &str, pem: &str) -> Result<Self, EvidenceError> {
        if let Ok(key) = ed25519_dalek::VerifyingKey::from_public_key_pem(pem) {
            return Ok(Self {
                id: id.to_string(),
                key: PublicKey::Ed25519(key),
            });
        }
        if let Ok(key) = p256::ecdsa::VerifyingKey::from_public_key_pem(pem) {
            return Ok(Self {
                id: id.to_string(),
                key: PublicKey::EcdsaP256(key),
            });
        }
        match rsa::PublicKey::from_public_key_pem(pem) {
            Ok(key) => Ok(Self {
                id: id.to_string(),
                key: PublicKey::Rsa(key),
            }),
            Err(_) => Err(EvidenceError::Key {
                key_id: id.to_string(),
                message:
                    "not a PEM SubjectPublicKeyInfo holding an Ed25519, ECDSA P-256 or RSA key"
                        .to_string(),
            }),
        }
    }

    /// An Ed25519 key from its 32 raw bytes.
    pub fn ed25519(id: &str, bytes: &[u8; 32]) -> Result<Self, EvidenceError> {
        ed25519_dalek::VerifyingKey::from_bytes(bytes)
            .map(|key| Self {
                id: id.to_string(),
                key: PublicKey::Ed25519(key),
            })
            .map_err(|err| EvidenceError::Key {
                key_id: id.to_string(),
                message: err.to_string(),
            })
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn algorithm(&self) -> KeyAlgorithm {
        match self.key {
            PublicKey::Ed25519(_) => KeyAlgorithm::Ed25519,
            PublicKey::EcdsaP256(_) => KeyAlgorithm::EcdsaP256Sha256,
            PublicKey::Rsa(_) => KeyAlgorithm::RsaSha256,
        }
    }

    fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        match &self.key {
            PublicKey::Ed25519(key) => ed25519_dalek::Signature::from_slice(signature)
                .is_ok_and(|sig| key.verify_strict(message, &sig).is_ok()),
            // Sigstore and cosign write ASN.1 DER signatures; accept the fixed r‖s form too.
            PublicKey::EcdsaP256(key) => {
                if let Ok(sig) = p256::ecdsa::DerSignature::from_bytes(signature)
                    && key.verify(message, &sig).is_ok()
                {
                    return true;
                }
                p256::ecdsa::Signature::from_slice(signature)
                    .is_ok_and(|sig| key.verify(message, &sig).is_ok())
            }
            // The envelope does not say which RSA padding was used; both are SHA-256 and a
            // signature can only verify under the one it was made with.
            PublicKey::Rsa(key) => {
                let Ok(sig) = rsa::pkcs1v15::Signature::try_from(signature) else {
                    return false;
                };
                let pkcs1 = rsa::pkcs1v15::VerifyingKey::<sha2::Sha256>::new(key.clone());
                if pkcs1.verify(message, &sig).is_ok() {
                    return true;
                }
                rsa::pss::Signature::try_from(signature).is_ok_and(|sig| {
                    rsa::pss::VerifyingKey::<sha2::Sha256>::new(key.clone())
                        .verify(message, &sig)
                        .is_ok()
                })
            }
        }
    }
}

/// Which trusted key verified an envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifiedBy {
    pub key_id: String,
    pub algorithm: KeyAlgorithm,
    /// Index of the verified signature in the envelope's `signatures`.
    pub signature_index: usize,
}

/// DSSE pre-authentication encoding:
/// `"DSSEv1" SP LEN(type) SP type SP LEN(body) SP body`, lengths in ASCII decimal.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload_type.len() + payload.len() + 32);
    out.extend_from_slice(b"DSSEv1 ");
    out.extend_from_slice(payload_type.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload_type.as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload);
    out
}

/// Checks that at least one signature of `envelope` was made by one of `keys`.
///
/// Key ids in the envelope are hints that producers fill inconsistently (often empty), so every
/// key is tried against every signature; what counts is the cryptographic check.
pub fn verify_dsse(
    envelope: &DsseEnvelope,
    keys: &[TrustedKey],
) -> Result<VerifiedBy, EvidenceError> {
    if envelope.signatures.is_empty() {
        return Err(EvidenceError::Unsigned { envelope: 1 });
    }
    let message = pae(&envelope.payload_type, &envelope.payload);
    for (signature_index, signature) in envelope.signatures.iter().enumerate() {
        for key in keys {
            if key.verifies(&message, &signature.sig) {
                return Ok(VerifiedBy {
                    key_id: key.id.clone(),
                    algorithm: key.algorithm(),
                    signature_index,
                });
            }
        }
    }
    Err(EvidenceError::UntrustedSignature {
        envelope: 1,
        signatures: envelope.signatures.len(),
        keys: keys.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pae_matches_the_dsse_specification_example() {
        // From the DSSE protocol description.
        let encoded = pae("http://example.com/HelloWorld", b"hello world");
        assert_eq!(
            encoded,
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world".to_vec()
        );
    }
}
