using Bittensor.Core.Domain;

namespace Bittensor.Chain.Local;

/// <summary>
/// How a localnet is created and run. Chain-wide constants default to subtensor's May-2024 runtime
/// (commit da21fb6a, <c>runtime/src/lib.rs</c>) as built by its <c>scripts/localnet.sh</c>, which enables the
/// <c>pow-faucet</c> feature (network rate limit 0).
/// </summary>
public sealed record LocalnetOptions
{
    /// <summary>Chain name; part of the chain identity (default "default").</summary>
    public string Name { get; init; } = "default";

    /// <summary>State folder; null keeps the chain in memory only (tests).</summary>
    public string? Path { get; init; }

    /// <summary>Free balance each dev account (//Alice … //Ferdie) gets at genesis (default 1 000 000 TAO).</summary>
    public Balance DevAccountBalance { get; init; } = Balance.FromTao(1_000_000m);

    /// <summary>Further accounts funded at genesis (e.g. the user's wallets).</summary>
    public IReadOnlyDictionary<AccountId, Balance> GenesisBalances { get; init; } = new Dictionary<AccountId, Balance>();

    /// <summary>TAO minted per block and split evenly across subnets (DefaultBlockEmission = 1 TAO).</summary>
    public ulong BlockEmissionRao { get; init; } = 1_000_000_000;

    /// <summary>Parameters every new subnet starts with (defaults: <see cref="SubnetHyperparameters.Default"/>).</summary>
    public SubnetHyperparameters SubnetDefaults { get; init; } = SubnetHyperparameters.Default;

    /// <summary>Minimum network lock cost in rao (SubtensorInitialMinLockCost = 1000 TAO).</summary>
    public ulong NetworkMinLockCost { get; init; } = 1_000_000_000_000;

    /// <summary>Blocks over which the doubled lock cost decays (SubtensorInitialNetworkLockReductionInterval = 14·7200).</summary>
    public ulong NetworkLockReductionInterval { get; init; } = 14 * 7200;

    /// <summary>Blocks between two register_network calls (0 with pow-faucet as in localnet.sh; 7200 otherwise).</summary>
    public ulong NetworkRateLimit { get; init; }

    /// <summary>Maximum subnets (SubtensorInitialSubnetLimit = 12).</summary>
    public ushort SubnetLimit { get; init; } = 12;

    /// <summary>Subnet owner cut of emission as a u16 fraction (SubtensorInitialSubnetOwnerCut = 11 796, 18%).</summary>
    public ushort SubnetOwnerCut { get; init; } = 11_796;

    /// <summary>Existential deposit in rao (EXISTENTIAL_DEPOSIT = 500).</summary>
    public ulong ExistentialDeposit { get; init; } = 500;

    /// <summary>Stake/unstake operations allowed per coldkey-hotkey pair per interval (SubtensorInitialTargetStakesPerInterval = 1).</summary>
    public ulong TargetStakesPerInterval { get; init; } = 1;

    /// <summary>Blocks per stake interval (DefaultStakeInterval = 360).</summary>
    public ulong StakeInterval { get; init; } = 360;

    /// <summary>Most calls waiting for the next block; more are refused with "PoolFull" (default 4096).</summary>
    public int MaxPendingCalls { get; init; } = 4096;

    /// <summary>Spec version reported in the chain identity (148 = the May-2024 runtime).</summary>
    public uint SpecVersion { get; init; } = 148;

    /// <summary>Transaction version reported in the chain identity.</summary>
    public uint TransactionVersion { get; init; } = 1;

    /// <summary>Clock for block timestamps.</summary>
    public TimeProvider Clock { get; init; } = TimeProvider.System;

    /// <summary>Throws <see cref="ArgumentException"/> for values the chain cannot run with.</summary>
    public LocalnetOptions Validate()
    {
        if (string.IsNullOrWhiteSpace(Name)) throw new ArgumentException("localnet name is empty");
        if (MaxPendingCalls < 1) throw new ArgumentException("MaxPendingCalls must be at least 1");
        if (StakeInterval == 0) throw new ArgumentException("StakeInterval must be at least 1");
        if (NetworkLockReductionInterval == 0) throw new ArgumentException("NetworkLockReductionInterval must be at least 1");
        SubnetDefaults.Validate();
        return this;
    }

    /// <summary>The default state folder for a named localnet: <c>~/.bittensor/localnet/&lt;name&gt;</c>.</summary>
    public static string DefaultPath(string name) =>
        System.IO.Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".bittensor", "localnet", name);
}
