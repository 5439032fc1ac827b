//! The wallet's encrypted key files.
//!
//! One JSON file per key, `<keystore>/<name>.json`: the address in clear, the private key
//! encrypted with XChaCha20-Poly1305 under a key derived from the password with scrypt. The
//! address is the AEAD's associated data, so a file whose address was edited fails to decrypt
//! instead of signing for someone else.

use std::path::{Path, PathBuf};

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use cairn_primitives::{AccountKey, Address};

/// scrypt cost of new keys: log2(N) = 17, r = 8, p = 1 (OWASP's recommendation; about a third
/// of a second and 128 MiB on a current core).
pub const SCRYPT_LOG_N: u8 = 17;

use crate::error::{KdfError, KeystoreError};

type Result<T> = std::result::Result<T, KeystoreError>;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct KeyFile {
    version: u32,
    name: String,
    address: Address,
    crypto: Crypto,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Crypto {
    kdf: String,
    log_n: u8,
    r: u32,
    p: u32,
    salt: String,
    cipher: String,
    nonce: String,
    ciphertext: String,
}

/// A key in the keystore, without its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyEntry {
    /// Its name.
    pub name: String,
    /// Its address.
    pub address: Address,
}

/// A directory of encrypted keys.
#[derive(Debug, Clone)]
pub struct Keystore {
    dir: PathBuf,
    log_n: u8,
}

impl Keystore {
    /// The default keystore directory: `~/.cairn/keystore` (`.cairn/keystore` without `HOME`).
    pub fn default_dir() -> PathBuf {
        cairn_primitives::dirs::cairn_home().join("keystore")
    }

    /// The keystore in `dir` (created on first write).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            log_n: SCRYPT_LOG_N,
        }
    }

    /// The same keystore writing new keys with a lower scrypt cost, where the full cost would
    /// dominate a test's run time.
    #[cfg(test)]
    fn with_scrypt_log_n(mut self, log_n: u8) -> Self {
        self.log_n = log_n;
        self
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, name: &str) -> Result<PathBuf> {
        let valid = !name.is_empty()
            && name.len() <= 64
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !valid {
            return Err(KeystoreError::BadName(name.to_string()));
        }
        Ok(self.dir.join(format!("{name}.json")))
    }

    fn io(path: &Path) -> impl FnOnce(std::io::Error) -> KeystoreError + '_ {
        move |source| KeystoreError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// Encrypts `key` under `password` and stores it as `name`.
    pub fn add(&self, name: &str, key: &AccountKey, password: &str) -> Result<KeyEntry> {
        let path = self.path(name)?;
        if path.exists() {
            return Err(KeystoreError::Exists(name.to_string()));
        }
        let mut salt = [0u8; 32];
        rand::fill(&mut salt);
        let mut nonce = [0u8; 24];
        rand::fill(&mut nonce);
        let address = key.address();
        let cipher =
            cipher(password, &salt, self.log_n, 8, 1).map_err(|error| KeystoreError::Corrupt {
                path: path.clone(),
                detail: error.to_string(),
            })?;
        let secret = key.secret();
        let ciphertext = cipher
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: secret.as_slice(),
                    aad: address.as_slice(),
                },
            )
            .map_err(|_| KeystoreError::Corrupt {
                path: path.clone(),
                detail: "encryption failed".into(),
            })?;
        let file = KeyFile {
            version: 1,
            name: name.to_string(),
            address,
            crypto: Crypto {
                kdf: "scrypt".into(),
                log_n: self.log_n,
                r: 8,
                p: 1,
                salt: hex::encode(salt),
                cipher: "xchacha20poly1305".into(),
                nonce: hex::encode(nonce),
                ciphertext: hex::encode(ciphertext),
            },
        };
        std::fs::create_dir_all(&self.dir).map_err(Self::io(&self.dir))?;
        let json = serde_json::to_vec_pretty(&file).map_err(|e| KeystoreError::Corrupt {
            path: path.clone(),
            detail: e.to_string(),
        })?;
        write_new_private(&path, &json).map_err(Self::io(&path))?;
        Ok(KeyEntry {
            name: name.to_string(),
            address,
        })
    }

    fn read(&self, name: &str) -> Result<(PathBuf, KeyFile)> {
        let path = self.path(name)?;
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(KeystoreError::NotFound {
                    name: name.into(),
                    dir: self.dir.clone(),
                });
            }
            Err(e) => return Err(KeystoreError::Io { path, source: e }),
        };
        let file: KeyFile = serde_json::from_str(&text).map_err(|e| KeystoreError::Corrupt {
            path: path.clone(),
            detail: e.to_string(),
        })?;
        Ok((path, file))
    }

    /// The address of key `name` (no password needed).
    pub fn address(&self, name: &str) -> Result<Address> {
        Ok(self.read(name)?.1.address)
    }

    /// Decrypts key `name`.
    pub fn unlock(&self, name: &str, password: &str) -> Result<AccountKey> {
        let (path, file) = self.read(name)?;
        let corrupt = |detail: &str| KeystoreError::Corrupt {
            path: path.clone(),
            detail: detail.into(),
        };
        let crypto = &file.crypto;
        if file.version != 1 || crypto.kdf != "scrypt" || crypto.cipher != "xchacha20poly1305" {
            return Err(corrupt("unsupported version, kdf or cipher"));
        }
        let salt = hex::decode(&crypto.salt).map_err(|_| corrupt("salt is not hex"))?;
        let mut nonce = [0u8; 24];
        hex::decode_to_slice(&crypto.nonce, &mut nonce)
            .map_err(|_| corrupt("nonce is not 24 bytes of hex"))?;
        let ciphertext =
            hex::decode(&crypto.ciphertext).map_err(|_| corrupt("ciphertext is not hex"))?;
        // Refuse costs that would make opening the file a denial of service.
        if crypto.log_n > 20 || crypto.r > 32 || crypto.p > 16 {
            return Err(corrupt("scrypt parameters are out of range"));
        }
        let cipher = cipher(password, &salt, crypto.log_n, crypto.r, crypto.p)
            .map_err(|error| corrupt(&error.to_string()))?;
        let secret = Zeroizing::new(
            cipher
                .decrypt(
                    &XNonce::from(nonce),
                    Payload {
                        msg: &ciphertext,
                        aad: file.address.as_slice(),
                    },
                )
                .map_err(|_| KeystoreError::WrongPassword(name.to_string()))?,
        );
        let secret: [u8; 32] = secret
            .as_slice()
            .try_into()
            .map_err(|_| corrupt("secret is not 32 bytes"))?;
        let key = AccountKey::from_bytes(&secret);
        if key.address() != file.address {
            return Err(corrupt("the key does not match the stored address"));
        }
        Ok(key)
    }

    /// Every key, by name.
    pub fn list(&self) -> Result<Vec<KeyEntry>> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => {
                return Err(KeystoreError::Io {
                    path: self.dir.clone(),
                    source: e,
                });
            }
        };
        let mut keys = Vec::new();
        for entry in entries {
            let path = entry.map_err(Self::io(&self.dir))?.path();
            let Some(name) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".json"))
            else {
                continue;
            };
            if let Ok((_, file)) = self.read(name) {
                keys.push(KeyEntry {
                    name: name.to_string(),
                    address: file.address,
                });
            }
        }
        keys.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(keys)
    }
}

fn cipher(
    password: &str,
    salt: &[u8],
    log_n: u8,
    r: u32,
    p: u32,
) -> std::result::Result<XChaCha20Poly1305, KdfError> {
    let params = scrypt::Params::new(log_n, r, p)?;
    let mut key = Zeroizing::new([0u8; 32]);
    scrypt::scrypt(password.as_bytes(), salt, &params, key.as_mut_slice())?;
    Ok(XChaCha20Poly1305::new(&Key::from(*key)))
}

/// Creates a file readable by its owner only; fails if it exists.
fn write_new_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_unlock_list_and_refusals() -> std::result::Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let store = Keystore::new(dir.path().join("keys")).with_scrypt_log_n(4);
        assert!(store.list()?.is_empty());
        let key = AccountKey::from_bytes(&[3; 32]);
        let entry = store.add("alice", &key, "pw")?;
        assert_eq!(entry.address, key.address());
        assert_eq!(store.unlock("alice", "pw")?.address(), key.address());
        assert_eq!(store.address("alice")?, key.address());
        assert!(matches!(
            store.unlock("alice", "nope"),
            Err(KeystoreError::WrongPassword(_))
        ));
        assert!(matches!(
            store.add("alice", &key, "pw"),
            Err(KeystoreError::Exists(_))
        ));
        assert!(matches!(
            store.add("../evil", &key, "pw"),
            Err(KeystoreError::BadName(_))
        ));
        assert!(matches!(
            store.unlock("bob", "pw"),
            Err(KeystoreError::NotFound { .. })
        ));
        assert_eq!(store.list()?, vec![entry]);

        // Pointing the file at another address makes it undecryptable, not a key for that address.
        let path = dir.path().join("keys/alice.json");
        let text = std::fs::read_to_string(&path)?;
        let other = format!("{:?}", Address::repeat_byte(0x11));
        let tampered = text.replace(&format!("{:?}", key.address()), &other);
        assert_ne!(text, tampered);
        std::fs::write(&path, tampered)?;
        assert!(matches!(
            store.unlock("alice", "pw"),
            Err(KeystoreError::WrongPassword(_))
        ));
        std::fs::write(&path, "{}")?;
        assert!(matches!(
            store.unlock("alice", "pw"),
            Err(KeystoreError::Corrupt { .. })
        ));
        Ok(())
    }

    #[test]
    fn a_file_whose_scrypt_cost_is_a_denial_of_service_is_refused()
    -> std::result::Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let store = Keystore::new(dir.path()).with_scrypt_log_n(4);
        store.add("alice", &AccountKey::from_bytes(&[5; 32]), "pw")?;
        let path = dir.path().join("alice.json");
        let mut file: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path)?)?;
        let crypto = file
            .as_object_mut()
            .and_then(|f| f.values_mut().find(|v| v.get("logN").is_some()))
            .ok_or("no scrypt parameters in the key file")?;
        // 2^40 rounds of scrypt would take the machine's memory and days of CPU.
        crypto["logN"] = 40.into();
        std::fs::write(&path, serde_json::to_string(&file)?)?;
        assert!(matches!(
            store.unlock("alice", "pw"),
            Err(KeystoreError::Corrupt { .. })
        ));
        Ok(())
    }
}
