//! ed25519 account keys and the addresses derived from them.

use alloy_primitives::{Address, keccak256};
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use zeroize::Zeroizing;

use crate::error::KeyError;

/// The EVM address of an ed25519 public key: the last 20 bytes of its keccak256 hash, as
/// Ethereum does for its keys, so addresses behave normally inside the EVM.
pub fn address_of(public_key: &[u8; 32]) -> Address {
    Address::from_slice(&keccak256(public_key)[12..])
}

/// An account's private key.
#[derive(Clone)]
pub struct AccountKey(SigningKey);

impl std::fmt::Debug for AccountKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AccountKey({})", self.address())
    }
}

impl AccountKey {
    /// A fresh key from the operating system's randomness.
    pub fn generate() -> Self {
        let mut seed = Zeroizing::new([0u8; 32]);
        rand::fill(seed.as_mut_slice());
        Self::from_bytes(&seed)
    }

    /// The key with this 32-byte secret.
    pub fn from_bytes(secret: &[u8; 32]) -> Self {
        Self(SigningKey::from_bytes(secret))
    }

    /// Parses a hex secret (64 hex digits, `0x` optional; surrounding whitespace ignored).
    pub fn from_hex(text: &str) -> Result<Self, KeyError> {
        let text = text.trim();
        let text = text.strip_prefix("0x").unwrap_or(text);
        let mut secret = Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(text, secret.as_mut_slice()).map_err(|_| KeyError::BadPrivateKey)?;
        Ok(Self::from_bytes(&secret))
    }

    /// The 32-byte secret.
    pub fn secret(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.0.to_bytes())
    }

    /// The secret as `0x`-prefixed hex.
    pub fn secret_hex(&self) -> Zeroizing<String> {
        Zeroizing::new(format!("0x{}", hex::encode(self.0.to_bytes())))
    }

    /// The public key.
    pub fn public_key(&self) -> [u8; 32] {
        self.0.verifying_key().to_bytes()
    }

    /// The account address.
    pub fn address(&self) -> Address {
        address_of(&self.public_key())
    }

    /// Signs a 32-byte digest.
    pub fn sign(&self, digest: &[u8; 32]) -> [u8; 64] {
        self.sign_message(digest)
    }

    /// Signs a message of any length.
    pub fn sign_message(&self, message: &[u8]) -> [u8; 64] {
        self.0.sign(message).to_bytes()
    }
}

/// Checks an ed25519 signature over a digest, with the strict rules (no malleable signatures,
/// no small-order keys) so that a signature is valid on every node or on none.
pub fn verify(public_key: &[u8; 32], digest: &[u8; 32], signature: &[u8; 64]) -> bool {
    verify_message(public_key, digest, signature)
}

/// [`verify`] for a message of any length.
pub fn verify_message(public_key: &[u8; 32], message: &[u8], signature: &[u8; 64]) -> bool {
    let Ok(key) = VerifyingKey::from_bytes(public_key) else {
        return false;
    };
    let signature = ed25519_dalek::Signature::from_bytes(signature);
    key.verify_strict(message, &signature).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_and_verify_round_trip_and_tamper() {
        let key = AccountKey::from_bytes(&[7; 32]);
        let digest = [1; 32];
        let signature = key.sign(&digest);
        assert!(verify(&key.public_key(), &digest, &signature));
        assert!(!verify(&key.public_key(), &[2; 32], &signature));
        let other = AccountKey::from_bytes(&[8; 32]);
        assert!(!verify(&other.public_key(), &digest, &signature));
    }

    #[test]
    fn hex_keys_parse_and_bad_ones_are_refused() {
        let key = AccountKey::from_bytes(&[9; 32]);
        let parsed = AccountKey::from_hex(&format!("  {}\n", key.secret_hex().as_str()));
        assert_eq!(parsed.map(|k| k.address()).ok(), Some(key.address()));
        assert!(AccountKey::from_hex("0x1234").is_err());
        assert!(AccountKey::from_hex(&"zz".repeat(32)).is_err());
    }
}
