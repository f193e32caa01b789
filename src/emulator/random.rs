//! Random identifiers and secrets. No I/O after seeding.
//!
//! The generator is SHA-256 over a 32-byte seed and a counter: seeded once from the
//! operating system (through rustls's ring provider, which the crate already uses), then
//! infallible, so request handlers never deal with an RNG failure.

use sha2::{Digest, Sha256};

/// A deterministic stream of random bytes from a seed.
pub struct Rng {
    seed: [u8; 32],
    counter: u64,
}

impl std::fmt::Debug for Rng {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The seed determines every secret the emulator issues.
        f.write_str("Rng { .. }")
    }
}

/// The operating system could not provide a seed.
#[derive(Debug, thiserror::Error)]
#[error("failed to read random bytes from the operating system")]
pub struct SeedError;

impl Rng {
    /// A generator seeded by the operating system.
    pub fn from_os() -> Result<Rng, SeedError> {
        let mut seed = [0u8; 32];
        rustls::crypto::ring::default_provider()
            .secure_random
            .fill(&mut seed)
            .map_err(|_| SeedError)?;
        Ok(Rng::from_seed(seed))
    }

    /// A generator with a fixed seed (tests).
    pub fn from_seed(seed: [u8; 32]) -> Rng {
        Rng { seed, counter: 0 }
    }

    fn block(&mut self) -> [u8; 32] {
        self.counter += 1;
        let mut hasher = Sha256::new();
        hasher.update(self.seed);
        hasher.update(self.counter.to_le_bytes());
        hasher.finalize().into()
    }

    /// A uniform number in [0, 1).
    pub fn unit(&mut self) -> f64 {
        let block = self.block();
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(&block[..8]);
        (u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// `len` characters from `alphabet` (at most 256 characters long), without bias.
    pub fn string(&mut self, alphabet: &[u8], len: usize) -> String {
        let limit = 256 - 256 % alphabet.len();
        let mut out = String::with_capacity(len);
        while out.len() < len {
            for b in self.block() {
                if usize::from(b) < limit && out.len() < len {
                    out.push(char::from(alphabet[usize::from(b) % alphabet.len()]));
                }
            }
        }
        out
    }

    /// `len` lowercase hex digits.
    pub fn hex(&mut self, len: usize) -> String {
        self.string(b"0123456789abcdef", len)
    }

    /// `len` letters and digits.
    pub fn alphanumeric(&mut self, len: usize) -> String {
        self.string(
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
            len,
        )
    }

    /// A random (version 4) UUID in its usual lowercase form, like the ids of Qlik's data
    /// connections and automations.
    pub fn uuid(&mut self) -> String {
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&self.block()[..16]);
        bytes[6] = (bytes[6] & 0x0f) | 0x40;
        bytes[8] = (bytes[8] & 0x3f) | 0x80;
        let hex = hex::encode(bytes);
        format!(
            "{}-{}-{}-{}-{}",
            &hex[..8],
            &hex[8..12],
            &hex[12..16],
            &hex[16..20],
            &hex[20..]
        )
    }
}

/// Whether `text` is a UUID in the form [`Rng::uuid`] writes (any version, either case).
pub fn is_uuid(text: &str) -> bool {
    text.len() == 36
        && text.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// SHA-256 of a credential, hex: what the emulator keeps instead of the credential itself.
pub fn fingerprint(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_have_the_requested_length_and_alphabet_and_differ() {
        let mut rng = Rng::from_seed([7; 32]);
        let a = rng.alphanumeric(64);
        let b = rng.alphanumeric(64);
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, b);
        assert!(rng.hex(24).bytes().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn uuids_are_version_4_and_recognised() {
        let mut rng = Rng::from_seed([9; 32]);
        let id = rng.uuid();
        assert!(is_uuid(&id), "{id}");
        assert_eq!(&id[14..15], "4");
        assert!("89ab".contains(&id[19..20]), "{id}");
        assert_ne!(id, rng.uuid());
        assert!(!is_uuid("82ee7b44-0c4d-491b-bd38-82640c0430a"));
        assert!(!is_uuid("82ee7b44x0c4d-491b-bd38-82640c0430a5"));
        assert!(is_uuid("82EE7B44-0C4D-491B-BD38-82640C0430A5"));
    }

    #[test]
    fn unit_values_are_in_range() {
        let mut rng = Rng::from_seed([1; 32]);
        for _ in 0..1000 {
            let u = rng.unit();
            assert!((0.0..1.0).contains(&u));
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_stream() {
        let mut a = Rng::from_seed([3; 32]);
        let mut b = Rng::from_seed([3; 32]);
        assert_eq!(a.hex(40), b.hex(40));
    }
}
