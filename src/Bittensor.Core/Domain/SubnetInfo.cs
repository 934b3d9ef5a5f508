namespace Bittensor.Core.Domain;

/// <summary>A subnet as the chain lists it.</summary>
/// <param name="Netuid">Subnet id.</param>
/// <param name="Owner">Coldkey that registered the subnet (receives the owner cut of emission).</param>
/// <param name="N">Neurons registered now.</param>
/// <param name="RegisteredAt">Block the subnet was created at.</param>
/// <param name="EmissionPerBlock">Emission the subnet receives per block (before the owner cut).</param>
/// <param name="LockedBalance">TAO the owner locked (burned on the localnet) to create it.</param>
/// <param name="Hyperparameters">Current parameters.</param>
public sealed record SubnetInfo(
    ushort Netuid,
    AccountId Owner,
    ushort N,
    ulong RegisteredAt,
    Balance EmissionPerBlock,
    Balance LockedBalance,
    SubnetHyperparameters Hyperparameters);

/// <summary>Stake a coldkey holds on a hotkey.</summary>
public sealed record StakeInfo(AccountId Hotkey, AccountId Coldkey, Balance Stake);
