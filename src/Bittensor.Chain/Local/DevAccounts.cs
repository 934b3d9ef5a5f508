using Bittensor.Core;
using Bittensor.Core.Domain;

namespace Bittensor.Chain.Local;

/// <summary>
/// Substrate's well-known development accounts (<c>//Alice</c> … <c>//Ferdie</c> from the public dev phrase,
/// sr25519). The public keys are the standard ones (SUBSTRATE.md §2.3 gives Alice and Bob); their secret keys
/// are public knowledge, so they are for local testing only.
/// </summary>
public static class DevAccounts
{
    /// <summary><c>//Alice</c>.</summary>
    public static readonly AccountId Alice = Key("d43593c715fdd31c61141abd04a99fd6822c8558854ccde39a5684e7a56da27d");

    /// <summary><c>//Bob</c>.</summary>
    public static readonly AccountId Bob = Key("8eaf04151687736326c9fea17e25fc5287613693c912909cb226aa4794f26a48");

    /// <summary><c>//Charlie</c>.</summary>
    public static readonly AccountId Charlie = Key("90b5ab205c6974c9ea841be688864633dc9ca8a357843eeacf2314649965fe22");

    /// <summary><c>//Dave</c>.</summary>
    public static readonly AccountId Dave = Key("306721211d5404bd9da88e0204360a1a9ab8b87c66c1bc2fcdd37f3c2222cc20");

    /// <summary><c>//Eve</c>.</summary>
    public static readonly AccountId Eve = Key("e659a7a1628cdd93febc04a4e0646ea20e9f5f0ce097d9a05290d4a9e054df4e");

    /// <summary><c>//Ferdie</c>.</summary>
    public static readonly AccountId Ferdie = Key("1cbd2d43530a44705ad088af313e18f80b53ef16b36177cd4b77b846f2a5f07c");

    /// <summary>All six with their secret URIs, in the usual order.</summary>
    public static IReadOnlyList<(string Suri, AccountId Account)> All { get; } =
    [
        ("//Alice", Alice), ("//Bob", Bob), ("//Charlie", Charlie), ("//Dave", Dave), ("//Eve", Eve), ("//Ferdie", Ferdie),
    ];

    private static AccountId Key(string hex) => new(Hex.Decode(hex));
}
