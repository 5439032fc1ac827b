//! Providers' signed adverts, gossiped on the adverts topic, and the table each node keeps.
//!
//! An advert is signed by the provider's account key, so no peer can advertise for someone
//! else; the on-chain registry stays the authority on roles and stake, the advert says what
//! is free right now and where to reach the provider. Only an account holding a provider role
//! on chain (so bonded at least the role's minimum) is listed or forwarded: keys made for free
//! cannot push real providers out of the table. A newer advert (higher `sequence`) replaces an
//! older one; the table holds at most [`MAX_PROVIDERS`] and forgets adverts not renewed within
//! [`ADVERT_LIFETIME`].

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use borsh::{BorshDeserialize, BorshSerialize};
use cairn_p2p::{NetworkHandle, PeerId, TopicKind, Verdict};

use cairn_primitives::{AccountKey, Address, Canonical, keys};

use crate::contracts::view;
use crate::error::DataError;
use cairn_chain::Chain;
use cairn_reward_contracts::bindings::Staking;

/// The most providers a node keeps adverts of.
pub const MAX_PROVIDERS: usize = 4096;
/// An advert not renewed for this long is dropped (providers renew every few seconds).
pub const ADVERT_LIFETIME: Duration = Duration::from_secs(120);
const MAX_ADDRESSES: usize = 8;
const MAX_FIELD: usize = 256;

/// What a provider offers now.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Advert {
    /// The chain it provides for.
    pub chain_id: u64,
    /// The provider's account.
    pub provider: Address,
    /// Its node's libp2p peer id.
    pub peer_id: String,
    /// Its node's libp2p addresses.
    pub addresses: Vec<String>,
    /// Storage offered in all, in bytes.
    pub storage_capacity: u64,
    /// Storage not yet taken by deals, in bytes.
    pub storage_free: u64,
    /// Storage price in wei per MiB per epoch.
    pub storage_price: u128,
    /// Cores offered to compute jobs.
    pub cores: u32,
    /// Memory offered to compute jobs, in MiB.
    pub memory_mib: u32,
    /// Fuel executed per second.
    pub fuel_per_second: u64,
    /// Compute price in wei per unit of fuel.
    pub compute_price: u128,
    /// Grows with every advert of this provider; the highest wins.
    pub sequence: u64,
}

/// An advert and its provider's signature.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct SignedAdvert {
    /// The advert.
    pub advert: Advert,
    /// The provider's ed25519 public key (its address derives from it).
    pub public_key: [u8; 32],
    /// Signature over [`Advert::digest`].
    pub signature: [u8; 64],
}

impl Canonical for SignedAdvert {
    const NAME: &'static str = "provider advert";
    const MAX_SIZE: usize = 8 * 1024;
}

impl Advert {
    /// The digest a provider signs.
    pub fn digest(&self) -> [u8; 32] {
        let mut hasher = blake3::Hasher::new_derive_key("cairn provider advert v1");
        hasher.update(&borsh::to_vec(self).unwrap_or_default());
        *hasher.finalize().as_bytes()
    }

    /// Signs the advert with the provider's key.
    pub fn sign(self, key: &AccountKey) -> SignedAdvert {
        let signature = key.sign(&self.digest());
        SignedAdvert {
            advert: self,
            public_key: key.public_key(),
            signature,
        }
    }
}

/// Why an advert was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdvertError {
    /// Not signed by the provider it names.
    #[error("the advert is not signed by the provider it names")]
    BadSignature,
    /// For another chain.
    #[error("the advert is for chain {0}")]
    WrongChain(u64),
    /// A field is too long.
    #[error("the advert's {0} is too long")]
    TooLong(&'static str),
    /// Not newer than the advert held.
    #[error("the advert is not newer than the one held")]
    Stale,
}

impl SignedAdvert {
    /// Checks the signature and the bounds of every field.
    pub fn check(&self, chain_id: u64) -> Result<(), AdvertError> {
        let advert = &self.advert;
        if advert.chain_id != chain_id {
            return Err(AdvertError::WrongChain(advert.chain_id));
        }
        if advert.peer_id.len() > MAX_FIELD {
            return Err(AdvertError::TooLong("peer id"));
        }
        if advert.addresses.len() > MAX_ADDRESSES
            || advert.addresses.iter().any(|a| a.len() > MAX_FIELD)
        {
            return Err(AdvertError::TooLong("address list"));
        }
        if keys::address_of(&self.public_key) != advert.provider
            || !keys::verify(&self.public_key, &advert.digest(), &self.signature)
        {
            return Err(AdvertError::BadSignature);
        }
        Ok(())
    }
}

/// Who holds a provider role on chain now.
pub trait ProviderRoles: Send + Sync + std::fmt::Debug {
    /// Whether `account` holds the storage or the compute role.
    fn is_provider(&self, account: &Address) -> bool;
}

impl ProviderRoles for Chain {
    fn is_provider(&self, account: &Address) -> bool {
        let roles = cairn_reward_contracts::roles::STORAGE | cairn_reward_contracts::roles::COMPUTE;
        view(
            self,
            cairn_reward_contracts::STAKING,
            Staking::stakeOfCall { staker: *account },
        )
        .is_ok_and(|stake| stake.roles & roles != 0)
    }
}

/// The verdict on a gossiped advert, kept in `table` if it is good and new: a malformed or
/// forged one is rejected (its sender pays in score); one from an account without a provider
/// role, or no newer than the one held, is dropped unforwarded.
fn judge(
    data: &[u8],
    chain_id: u64,
    roles: &dyn ProviderRoles,
    table: &Mutex<AdvertTable>,
    now: Instant,
) -> Verdict {
    let Ok(advert) = SignedAdvert::decode(data) else {
        return Verdict::Reject;
    };
    if advert.check(chain_id).is_err() {
        return Verdict::Reject;
    }
    // The table's lock is not held through the role's EVM read.
    let stale = lock(table).is_stale(&advert);
    if stale || !roles.is_provider(&advert.advert.provider) {
        // A provider that just bonded, or just left, may differ by a block between nodes:
        // not the sender's fault.
        return Verdict::Ignore;
    }
    match lock(table).insert(advert, now) {
        Ok(()) => Verdict::Accept,
        Err(_) => Verdict::Ignore,
    }
}

fn lock(table: &Mutex<AdvertTable>) -> std::sync::MutexGuard<'_, AdvertTable> {
    // Every update is a single insert: a panic mid-way leaves the table consistent.
    table.lock().unwrap_or_else(|p| p.into_inner())
}

/// The adverts a node has heard, one per provider.
#[derive(Debug, Default)]
pub struct AdvertTable {
    adverts: BTreeMap<Address, (SignedAdvert, Instant)>,
}

impl AdvertTable {
    /// Whether the table holds an advert of the same provider at least as new.
    pub fn is_stale(&self, advert: &SignedAdvert) -> bool {
        self.adverts
            .get(&advert.advert.provider)
            .is_some_and(|(held, _)| held.advert.sequence >= advert.advert.sequence)
    }

    /// Takes a checked advert if it is newer than the one held; when the table is full, the
    /// advert heard longest ago makes room.
    pub fn insert(&mut self, advert: SignedAdvert, now: Instant) -> Result<(), AdvertError> {
        let provider = advert.advert.provider;
        if self.is_stale(&advert) {
            return Err(AdvertError::Stale);
        }
        self.adverts
            .retain(|_, (_, heard)| now.duration_since(*heard) < ADVERT_LIFETIME);
        if !self.adverts.contains_key(&provider) && self.adverts.len() >= MAX_PROVIDERS {
            let oldest = self
                .adverts
                .iter()
                .min_by_key(|(_, (_, heard))| *heard)
                .map(|(address, _)| *address);
            if let Some(oldest) = oldest {
                self.adverts.remove(&oldest);
            }
        }
        self.adverts.insert(provider, (advert, now));
        Ok(())
    }

    /// The live adverts, by provider address.
    pub fn live(&self, now: Instant) -> Vec<SignedAdvert> {
        self.adverts
            .values()
            .filter(|(_, heard)| now.duration_since(*heard) < ADVERT_LIFETIME)
            .map(|(advert, _)| advert.clone())
            .collect()
    }

    /// The live advert of `provider`.
    pub fn get(&self, provider: &Address, now: Instant) -> Option<SignedAdvert> {
        self.adverts
            .get(provider)
            .filter(|(_, heard)| now.duration_since(*heard) < ADVERT_LIFETIME)
            .map(|(advert, _)| advert.clone())
    }
}

/// The node's table of providers' adverts, fed by gossip, with this node's own.
#[derive(Debug)]
pub struct Adverts {
    chain_id: u64,
    network: NetworkHandle,
    roles: Arc<dyn ProviderRoles>,
    table: Mutex<AdvertTable>,
}

impl Adverts {
    /// An empty table for the chain with this id, listing the accounts `roles` says are
    /// providers.
    pub fn new(chain_id: u64, network: NetworkHandle, roles: Arc<dyn ProviderRoles>) -> Self {
        Self {
            chain_id,
            network,
            roles,
            table: Mutex::new(AdvertTable::default()),
        }
    }

    fn table(&self) -> std::sync::MutexGuard<'_, AdvertTable> {
        lock(&self.table)
    }

    /// Checks a gossiped advert and keeps it if it is new and its account a provider.
    pub fn on_gossip(&self, data: &[u8]) -> Verdict {
        judge(
            data,
            self.chain_id,
            &*self.roles,
            &self.table,
            Instant::now(),
        )
    }

    /// Publishes this node's own advert (and keeps it, as gossip does not come back).
    pub async fn publish(&self, advert: SignedAdvert) -> Result<(), DataError> {
        let bytes = advert.encode();
        // Kept first: a node alone on its network still lists itself.
        let _ = self.table().insert(advert, Instant::now());
        self.network
            .publish(TopicKind::ProviderAdverts, bytes)
            .await
            .map_err(DataError::from)
    }

    /// The providers' live adverts.
    pub fn live(&self) -> Vec<SignedAdvert> {
        self.table().live(Instant::now())
    }

    /// The peer a provider advertises, to send it requests.
    pub fn peer_of(&self, provider: &Address) -> Result<PeerId, DataError> {
        let advert = self
            .table()
            .get(provider, Instant::now())
            .ok_or(DataError::NoAdvert(*provider))?;
        advert
            .advert
            .peer_id
            .parse()
            .map_err(|_| DataError::NoAdvert(*provider))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn advert(key: &AccountKey, sequence: u64) -> Advert {
        Advert {
            chain_id: 7,
            provider: key.address(),
            peer_id: "12D3KooW".into(),
            addresses: vec!["/ip4/127.0.0.1/tcp/1".into()],
            storage_capacity: 1 << 30,
            storage_free: 1 << 29,
            storage_price: 1_000,
            cores: 0,
            memory_mib: 0,
            fuel_per_second: 0,
            compute_price: 0,
            sequence,
        }
    }

    #[test]
    fn only_the_provider_can_sign_and_newer_adverts_win() {
        let key = AccountKey::from_bytes(&[3; 32]);
        let signed = advert(&key, 2).sign(&key);
        assert_eq!(signed.check(7), Ok(()));
        assert_eq!(signed.check(8), Err(AdvertError::WrongChain(7)));
        let round_trip = SignedAdvert::decode(&signed.encode()).unwrap();
        assert_eq!(round_trip, signed);

        let mut forged = signed.clone();
        forged.advert.storage_price = 1;
        assert_eq!(forged.check(7), Err(AdvertError::BadSignature));
        let impostor = AccountKey::from_bytes(&[4; 32]);
        let mut claimed = advert(&key, 3).sign(&impostor);
        assert_eq!(claimed.check(7), Err(AdvertError::BadSignature));
        claimed.advert.addresses = vec![String::new(); MAX_ADDRESSES + 1];
        assert_eq!(claimed.check(7), Err(AdvertError::TooLong("address list")));

        let now = Instant::now();
        let mut table = AdvertTable::default();
        table.insert(signed.clone(), now).unwrap();
        assert_eq!(table.insert(signed.clone(), now), Err(AdvertError::Stale));
        table.insert(advert(&key, 5).sign(&key), now).unwrap();
        assert_eq!(table.get(&key.address(), now).unwrap().advert.sequence, 5);
        assert!(table.live(now + ADVERT_LIFETIME).is_empty());
    }

    use std::collections::BTreeSet;

    /// A chain where only these accounts hold a provider role.
    #[derive(Debug)]
    struct Registered(BTreeSet<Address>);

    impl ProviderRoles for Registered {
        fn is_provider(&self, account: &Address) -> bool {
            self.0.contains(account)
        }
    }

    #[test]
    fn attack_adverts_of_accounts_without_a_provider_role_are_not_listed_or_forwarded() {
        let now = Instant::now();
        let real: Vec<AccountKey> = (0..3).map(numbered_key).collect();
        let roles = Registered(real.iter().map(AccountKey::address).collect());
        let table = Mutex::new(AdvertTable::default());
        for key in &real {
            let data = advert(key, 1).sign(key).encode();
            assert_eq!(judge(&data, 7, &roles, &table, now), Verdict::Accept);
        }
        // A flood of adverts signed by fresh keys: none listed, none forwarded, nobody evicted.
        for i in 100..(100 + MAX_PROVIDERS) {
            let key = numbered_key(i);
            let data = advert(&key, 1).sign(&key).encode();
            assert_eq!(judge(&data, 7, &roles, &table, now), Verdict::Ignore);
        }
        assert_eq!(lock(&table).live(now).len(), 3);
        // Garbage and forgeries cost their sender.
        assert_eq!(judge(&[1, 2, 3], 7, &roles, &table, now), Verdict::Reject);
        let mut forged = advert(&real[0], 2).sign(&real[0]);
        forged.advert.storage_price = 0;
        assert_eq!(
            judge(&forged.encode(), 7, &roles, &table, now),
            Verdict::Reject
        );
        let replayed = advert(&real[0], 1).sign(&real[0]).encode();
        assert_eq!(judge(&replayed, 7, &roles, &table, now), Verdict::Ignore);
    }

    fn numbered_key(i: usize) -> AccountKey {
        let mut secret = [7u8; 32];
        secret[..8].copy_from_slice(&(i as u64).to_le_bytes());
        AccountKey::from_bytes(&secret)
    }

    #[test]
    fn a_full_table_forgets_the_advert_heard_longest_ago() {
        let start = Instant::now();
        let mut table = AdvertTable::default();
        for i in 0..=MAX_PROVIDERS {
            let key = numbered_key(i);
            let heard = start + Duration::from_millis(i as u64);
            table.insert(advert(&key, 1).sign(&key), heard).unwrap();
        }
        let now = start + Duration::from_secs(1);
        assert_eq!(table.live(now).len(), MAX_PROVIDERS);
        assert!(table.get(&numbered_key(0).address(), now).is_none());
        assert!(table.get(&numbered_key(1).address(), now).is_some());
    }
}
