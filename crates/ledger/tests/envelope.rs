#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Envelope encryption: round trips, key rotation by rewrapping (resumable, idempotent), the
//! errors for removed and wrong keys naming the key id, and secrets kept out of Debug output
//! and error messages.

use gatehouse_ledger::envelope::{EnvelopeError, KeyFileError, rewrap, seal};
use gatehouse_ledger::{Kek, KekId, Keyring, LogSigningKey, SealedObject, open};
use jiff::Timestamp;

fn key_file(name: &str) -> (String, String) {
    let path = format!("{}/tests/fixtures/keys/{name}", env!("CARGO_MANIFEST_DIR"));
    (std::fs::read_to_string(&path).unwrap(), path)
}

fn ring(name: &str) -> Keyring {
    let (text, path) = key_file(name);
    Keyring::parse(&text, &path).unwrap()
}

fn id(text: &str) -> KekId {
    KekId::new(text).unwrap()
}

const OLD: &str = "kek-20260101-0a1b2c3d";
const NEW: &str = "kek-20261127-4e5f6a7b";

#[test]
fn key_file_loads_both_keys_and_the_newest_is_active() {
    let keys = ring("two_keks.jsonl");
    assert_eq!(keys.len(), 2);
    assert_eq!(keys.active().unwrap().id().as_str(), NEW);
}

#[test]
fn seal_then_open_round_trips_and_binds_the_object_id() {
    let keys = ring("two_keks.jsonl");
    let kek = keys.active().unwrap();
    let plaintext = b"SARIF evidence for release 42".repeat(100);
    let sealed = seal(b"evidence:42", &plaintext, kek).unwrap();
    assert_eq!(sealed.kek_id().as_str(), NEW);
    assert_ne!(&sealed.ciphertext[..plaintext.len()], plaintext.as_slice());
    let opened = open(b"evidence:42", &sealed, &keys).unwrap();
    assert_eq!(opened.as_slice(), plaintext.as_slice());

    // Stored bytes survive a round trip through the binary encoding.
    let stored = SealedObject::decode(&sealed.encode()).unwrap();
    assert_eq!(
        open(b"evidence:42", &stored, &keys).unwrap().as_slice(),
        plaintext.as_slice()
    );

    // The same sealed bytes presented as another object do not open.
    let err = open(b"evidence:43", &sealed, &keys).unwrap_err();
    assert!(matches!(err, EnvelopeError::KeyMismatch { .. }), "{err}");
}

#[test]
fn two_seals_of_the_same_plaintext_differ() {
    let keys = ring("two_keks.jsonl");
    let kek = keys.active().unwrap();
    let a = seal(b"o", b"same", kek).unwrap();
    let b = seal(b"o", b"same", kek).unwrap();
    assert_ne!(a.ciphertext, b.ciphertext);
    assert_ne!(a.data_key.ciphertext, b.data_key.ciphertext);
}

#[test]
fn tampered_ciphertext_is_rejected() {
    let keys = ring("two_keks.jsonl");
    let mut sealed = seal(b"o", b"payload", keys.active().unwrap()).unwrap();
    sealed.ciphertext[0] ^= 1;
    let err = open(b"o", &sealed, &keys).unwrap_err();
    assert!(matches!(err, EnvelopeError::CiphertextRejected), "{err}");
}

#[test]
fn removed_kek_gives_an_error_naming_the_key_id() {
    let mut keys = ring("two_keks.jsonl");
    let old = keys.get(&id(OLD)).unwrap();
    let sealed = seal(b"blob:1", b"payload", old).unwrap();
    keys.remove(&id(OLD)).unwrap();
    let err = open(b"blob:1", &sealed, &keys).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("key-encryption key `{OLD}` not found in keyring")
    );
}

#[test]
fn wrong_kek_under_the_right_id_gives_an_error_naming_the_key_id() {
    // E.g. a key file restored from the wrong backup: same id, other key bytes.
    let keys = ring("two_keks.jsonl");
    let sealed = seal(b"blob:2", b"payload", keys.get(&id(NEW)).unwrap()).unwrap();
    let mut impostor = Keyring::new();
    impostor
        .insert(Kek::from_bytes(id(NEW), Timestamp::UNIX_EPOCH, &[9; 32]))
        .unwrap();
    let err = open(b"blob:2", &sealed, &impostor).unwrap_err();
    assert!(
        err.to_string().starts_with(&format!(
            "cannot unwrap data key: key `{NEW}` does not match"
        )),
        "{err}"
    );
}

#[test]
fn rewrap_moves_the_data_key_without_touching_the_ciphertext() {
    let keys = ring("two_keks.jsonl");
    let (old, new) = (keys.get(&id(OLD)).unwrap(), keys.get(&id(NEW)).unwrap());
    let sealed = seal(b"blob:3", b"payload", old).unwrap();
    let rewrapped = rewrap(b"blob:3", &sealed.data_key, old, new).unwrap();
    assert_eq!(rewrapped.kek_id.as_str(), NEW);
    let rotated = SealedObject {
        data_key: rewrapped.clone(),
        ..sealed.clone()
    };
    assert_eq!(rotated.ciphertext, sealed.ciphertext);

    // Only the new key is needed afterwards.
    let mut only_new = ring("two_keks.jsonl");
    only_new.remove(&id(OLD)).unwrap();
    assert_eq!(
        open(b"blob:3", &rotated, &only_new).unwrap().as_slice(),
        b"payload"
    );

    // Rewrapping again is a no-op.
    assert_eq!(rewrap(b"blob:3", &rewrapped, old, new).unwrap(), rewrapped);
}

#[test]
fn interrupted_rotation_resumes_and_every_object_ends_under_the_new_key() {
    let keys = ring("two_keks.jsonl");
    let old = keys.get(&id(OLD)).unwrap();
    let mut objects: Vec<(Vec<u8>, SealedObject)> = (0..20)
        .map(|i| {
            let object_id = format!("blob:{i}").into_bytes();
            let sealed = seal(&object_id, format!("payload {i}").as_bytes(), old).unwrap();
            (object_id, sealed)
        })
        .collect();

    // First run stops after 7 objects.
    for (object_id, sealed) in objects.iter_mut().take(7) {
        if let Some(next) = keys
            .rewrap_to(object_id, &sealed.data_key, &id(NEW))
            .unwrap()
        {
            sealed.data_key = next;
        }
    }
    // The resumed run goes over everything; done objects are skipped, not rewrapped twice.
    let mut rewrapped = 0;
    for (object_id, sealed) in &mut objects {
        if let Some(next) = keys
            .rewrap_to(object_id, &sealed.data_key, &id(NEW))
            .unwrap()
        {
            sealed.data_key = next;
            rewrapped += 1;
        }
    }
    assert_eq!(rewrapped, 13);

    let mut only_new = ring("two_keks.jsonl");
    only_new.remove(&id(OLD)).unwrap();
    for (i, (object_id, sealed)) in objects.iter().enumerate() {
        assert_eq!(sealed.kek_id().as_str(), NEW);
        let opened = open(object_id, sealed, &only_new).unwrap();
        assert_eq!(opened.as_slice(), format!("payload {i}").as_bytes());
    }
}

#[test]
fn rewrap_to_an_unknown_key_names_it() {
    let keys = ring("two_keks.jsonl");
    let sealed = seal(b"o", b"p", keys.get(&id(OLD)).unwrap()).unwrap();
    let err = keys
        .rewrap_to(b"o", &sealed.data_key, &id("kek-missing"))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "key-encryption key `kek-missing` not found in keyring"
    );
}

#[test]
fn key_file_errors_point_at_line_and_column_and_never_quote_key_material() {
    let (text, path) = key_file("bad_base64_line2.jsonl");
    let err = Keyring::parse(&text, &path).unwrap_err();
    assert_eq!((err.line, err.column), (2, 3), "{err}");
    let message = err.to_string();
    assert!(message.starts_with(&format!("{path}:2:3: ")), "{message}");
    assert!(message.contains(NEW), "{message}");
    assert!(!message.contains("c2VjcmV0"), "{message}");

    let (text, path) = key_file("truncated_json_line1.jsonl");
    let err: KeyFileError = Keyring::parse(&text, &path).unwrap_err();
    assert_eq!(err.line, 1);
    assert!(!err.to_string().contains("AQEBAQEB"), "{err}");

    let (text, path) = key_file("duplicate_id.jsonl");
    let err = Keyring::parse(&text, &path).unwrap_err();
    assert_eq!(err.line, 2);
    assert!(
        err.to_string()
            .contains("`kek-same` is already in the keyring"),
        "{err}"
    );

    let err = Keyring::parse("{\"id\":\"a b\",\"key\":\"AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=\",\"created\":\"2026-01-01T00:00:00Z\"}", "env:GATEHOUSE_KEYS").unwrap_err();
    assert!(
        err.to_string().starts_with("env:GATEHOUSE_KEYS:1:1: "),
        "{err}"
    );
}

#[test]
fn generated_keys_round_trip_through_the_key_file_text() {
    let mut keys = Keyring::new();
    keys.insert(Kek::generate("2026-11-27T12:00:00Z".parse().unwrap()).unwrap())
        .unwrap();
    keys.insert(Kek::generate("2026-11-28T12:00:00Z".parse().unwrap()).unwrap())
        .unwrap();
    let text = keys.to_key_file();
    let again = Keyring::parse(&text, "generated").unwrap();
    assert_eq!(
        again.ids().collect::<Vec<_>>(),
        keys.ids().collect::<Vec<_>>()
    );
    let sealed = seal(b"o", b"p", keys.active().unwrap()).unwrap();
    assert_eq!(open(b"o", &sealed, &again).unwrap().as_slice(), b"p");
}

#[test]
fn debug_output_never_shows_secrets() {
    let keys = ring("two_keks.jsonl");
    let (text, _) = key_file("two_keks.jsonl");
    let secret_b64 = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";
    assert!(text.contains(secret_b64));
    let kek = keys.get(&id(OLD)).unwrap();
    let sealed = seal(b"o", b"top secret plaintext", kek).unwrap();
    for debug in [
        format!("{keys:?}"),
        format!("{kek:?}"),
        format!("{sealed:?}"),
        format!("{:?}", sealed.data_key),
    ] {
        assert!(!debug.contains(secret_b64), "{debug}");
        assert!(!debug.contains("1, 1, 1, 1"), "{debug}");
        assert!(!debug.contains("top secret"), "{debug}");
    }
    assert!(format!("{kek:?}").contains("[redacted]"));

    let signing = LogSigningKey::from_secret_bytes(&[1; 32]);
    let debug = format!("{signing:?}");
    assert!(
        !debug.contains(signing.to_base64_secret().as_str()),
        "{debug}"
    );
    assert!(!debug.contains("1, 1, 1"), "{debug}");
}

#[test]
fn secrets_are_held_in_zeroizing_types() {
    // These bindings only compile while the APIs hand secrets out in zeroizing wrappers.
    let keys = ring("two_keks.jsonl");
    let sealed = seal(b"o", b"p", keys.active().unwrap()).unwrap();
    let opened: zeroize::Zeroizing<Vec<u8>> = open(b"o", &sealed, &keys).unwrap();
    let file: zeroize::Zeroizing<String> = keys.to_key_file();
    let secret: zeroize::Zeroizing<String> =
        LogSigningKey::from_secret_bytes(&[3; 32]).to_base64_secret();
    assert_eq!(opened.as_slice(), b"p");
    assert!(file.contains(NEW) && !secret.is_empty());
}
