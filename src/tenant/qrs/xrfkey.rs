//! The Xrfkey: the QRS API's guard against cross-site request forgery. Every request
//! carries the same key in the `xrfkey` query parameter and the `X-Qlik-Xrfkey` header,
//! 16 characters of `0-9`, `a-z`, `A-Z` (Qlik's "Using Xrfkey headers"). The site only
//! checks that the two agree; a fresh key from a CSPRNG for every request (every attempt
//! of a retry too) keeps one that leaked into a log from being worth anything. No I/O
//! besides drawing random bytes.

use ring::rand::{SecureRandom, SystemRandom};

/// The key's length, as the QRS API requires.
pub const XRFKEY_LEN: usize = 16;

/// The name of the query parameter.
pub const XRFKEY_PARAM: &str = "xrfkey";

/// The name of the header.
pub const XRFKEY_HEADER: &str = "X-Qlik-Xrfkey";

/// The characters a key may hold.
const ALPHABET: &[u8; 62] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

/// Random bytes at or above this are dropped, so that every character is equally likely
/// (256 is not a multiple of 62; 248 = 4 × 62 is).
const UNBIASED_BELOW: u8 = (256 - 256 % ALPHABET.len()) as u8;

/// Builds a key from random `bytes`, taking them in order and dropping those that would
/// bias the draw. `None` when `bytes` run out first. Pure.
pub fn xrfkey_from_bytes(bytes: &[u8]) -> Option<String> {
    let key: String = characters(bytes).take(XRFKEY_LEN).collect();
    (key.len() == XRFKEY_LEN).then_some(key)
}

/// The alphabet's characters that `bytes` stand for, the biasing ones left out.
fn characters(bytes: &[u8]) -> impl Iterator<Item = char> + '_ {
    bytes
        .iter()
        .filter(|&&b| b < UNBIASED_BELOW)
        .map(|&b| char::from(ALPHABET[usize::from(b) % ALPHABET.len()]))
}

/// A fresh key from `rng`. Fails only when the random number generator does.
pub(crate) fn new_xrfkey(rng: &SystemRandom) -> Result<String, ring::error::Unspecified> {
    // 32 bytes leave 16 after dropping (each kept with p = 248/256) all but always; the
    // loop covers the rest.
    let mut bytes = [0u8; 2 * XRFKEY_LEN];
    let mut key = String::with_capacity(XRFKEY_LEN);
    while key.len() < XRFKEY_LEN {
        rng.fill(&mut bytes)?;
        let missing = XRFKEY_LEN - key.len();
        key.extend(characters(&bytes).take(missing));
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_valid(key: &str) -> bool {
        key.len() == XRFKEY_LEN && key.bytes().all(|b| b.is_ascii_alphanumeric())
    }

    #[test]
    fn keys_are_sixteen_alphanumeric_characters_and_differ() {
        let rng = SystemRandom::new();
        let keys: Vec<String> = (0..64)
            .map(|_| new_xrfkey(&rng).unwrap_or_else(|_| panic!("no randomness")))
            .collect();
        assert!(keys.iter().all(|k| is_valid(k)), "{keys:?}");
        assert_ne!(keys[0], keys[1]);
        let distinct: std::collections::HashSet<_> = keys.iter().collect();
        assert_eq!(distinct.len(), keys.len(), "a key repeated");
    }

    #[test]
    fn bytes_map_onto_the_alphabet_and_biasing_bytes_are_dropped() {
        let cases: [(&[u8], Option<&str>); 5] = [
            (&[0; 16], Some("0000000000000000")),
            (
                &[0, 1, 9, 10, 35, 36, 61, 62, 123, 247, 0, 0, 0, 0, 0, 0],
                Some("019azAZ0ZZ000000"),
            ),
            // 248..=255 are dropped; the next bytes fill in.
            (
                &[
                    248, 255, 250, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2,
                ],
                Some("1111111111111111"),
            ),
            (&[1; 15], None),
            (&[255; 64], None),
        ];
        for (bytes, want) in cases {
            let key = xrfkey_from_bytes(bytes);
            assert_eq!(key.as_deref(), want, "{bytes:?}");
            assert!(key.as_deref().is_none_or(is_valid));
        }
    }

    #[test]
    fn every_character_of_the_alphabet_can_appear_and_nothing_else() {
        let bytes: Vec<u8> = (0..=255).collect();
        let seen: std::collections::BTreeSet<char> = bytes
            .chunks(16)
            .filter_map(xrfkey_from_bytes)
            .flat_map(|k| k.chars().collect::<Vec<_>>())
            .collect();
        assert_eq!(seen.len(), 62);
        assert!(seen.iter().all(char::is_ascii_alphanumeric));
    }
}
