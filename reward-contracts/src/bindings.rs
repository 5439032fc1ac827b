//! Rust bindings generated from the committed artifacts (ABI and bytecode).

#![allow(missing_docs)] // Generated code; the Solidity sources carry the documentation.
#![allow(clippy::too_many_arguments)] // Generated constructors take one argument per event field.

alloy_sol_types::sol!(
    #[derive(Debug, PartialEq, Eq)]
    Staking,
    "artifacts/Staking.json"
);
alloy_sol_types::sol!(
    #[derive(Debug, PartialEq, Eq)]
    ProviderRegistry,
    "artifacts/ProviderRegistry.json"
);
alloy_sol_types::sol!(
    #[derive(Debug, PartialEq, Eq)]
    StorageMarket,
    "artifacts/StorageMarket.json"
);
alloy_sol_types::sol!(
    #[derive(Debug, PartialEq, Eq)]
    ComputeMarket,
    "artifacts/ComputeMarket.json"
);
alloy_sol_types::sol!(
    #[derive(Debug, PartialEq, Eq)]
    RewardPool,
    "artifacts/RewardPool.json"
);
alloy_sol_types::sol!(
    #[derive(Debug, PartialEq, Eq)]
    BenchToken,
    "artifacts/BenchToken.json"
);
