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

// `sol!` reads the artifacts when it expands but does not tell cargo, so a changed artifact
// alone would not rebuild the bindings and the node would predeploy the old code. Including the
// files makes cargo track them.
const _: [&str; 6] = [
    include_str!("../artifacts/Staking.json"),
    include_str!("../artifacts/ProviderRegistry.json"),
    include_str!("../artifacts/StorageMarket.json"),
    include_str!("../artifacts/ComputeMarket.json"),
    include_str!("../artifacts/RewardPool.json"),
    include_str!("../artifacts/BenchToken.json"),
];
