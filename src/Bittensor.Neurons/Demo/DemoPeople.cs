using Bittensor.Core.Crypto;
using Bittensor.Core.Domain;
using Bittensor.Wallet;

namespace Bittensor.Neurons.Demo;

/// <summary>One demo participant: a wallet (coldkey + hotkey "default") in the demo folder and the role it plays.</summary>
internal sealed class DemoPerson : IDisposable
{
    private readonly Sr25519KeyPair _cold;
    private readonly Sr25519KeyPair _hot;

    public DemoPerson(string name, string role, Sr25519KeyPair cold, Sr25519KeyPair hot)
    {
        Name = name;
        Role = role;
        _cold = cold;
        _hot = hot;
        Coldkey = NeuronKeys.FromPairs(hot, cold);
    }

    public string Name { get; }
    public string Role { get; }

    /// <summary>For a bad server, its adversary kind (<see cref="Adversaries.Kinds"/>); null otherwise.</summary>
    public string? Kind { get; init; }

    /// <summary>
    /// For a server that runs as a cluster (<c>btcli demo --processes</c>), what it is made of ("1 front + 2 workers");
    /// null otherwise. Set once its processes serve, before the validator starts.
    /// </summary>
    public string? Cluster
    {
        get => Volatile.Read(ref _cluster);
        set => Volatile.Write(ref _cluster, value);
    }

    private string? _cluster;

    /// <summary>Keys with the coldkey unlocked (registration, staking).</summary>
    public NeuronKeys Coldkey { get; }

    public AccountId ColdkeyAccount => new(_cold.PublicKey.Span);

    /// <summary>A call signed by this participant's coldkey (the demo prepares its chain's genesis this way).</summary>
    public Bittensor.Chain.SignedCall SignWithColdkey(Bittensor.Core.Domain.ChainCall call, uint nonce, Bittensor.Chain.ChainIdentity chain) =>
        Bittensor.Chain.CallSigner.Sign(call, _cold, nonce, chain);
    public AccountId HotkeyAccount => new(_hot.PublicKey.Span);

    public void Dispose()
    {
        _cold.Dispose();
        _hot.Dispose();
    }
}

/// <summary>
/// The demo's wallets. Keys derive from the seed so runs repeat; they are throwaway keys for a throwaway chain, written
/// unencrypted (mode 0600, folder 0700) under the demo folder, which is deleted afterwards, and never printed.
/// </summary>
internal sealed class DemoPeople : IDisposable
{
    private DemoPeople(DemoPerson owner, DemoPerson validator, IReadOnlyList<DemoPerson> servers, IReadOnlyList<DemoPerson> bad)
    {
        Owner = owner;
        Validator = validator;
        Servers = servers;
        BadServers = bad;
    }

    public DemoPerson Owner { get; }
    public DemoPerson Validator { get; }
    public IReadOnlyList<DemoPerson> Servers { get; }
    public IReadOnlyList<DemoPerson> BadServers { get; }
    public IEnumerable<DemoPerson> All => new[] { Owner, Validator }.Concat(Servers).Concat(BadServers);

    public string RoleOf(AccountId hotkey) => All.FirstOrDefault(p => p.HotkeyAccount == hotkey)?.Role ?? "unknown";

    public string? KindOf(AccountId hotkey) => All.FirstOrDefault(p => p.HotkeyAccount == hotkey)?.Kind;

    public string? ClusterOf(AccountId hotkey) => All.FirstOrDefault(p => p.HotkeyAccount == hotkey)?.Cluster;

    public static DemoPeople Create(string folder, DemoOptions options)
    {
        var random = new Random(options.Seed);
        var wallets = Path.Combine(folder, "wallets");
        DemoPerson Make(string name, string role, string? kind = null)
        {
            var coldMini = new byte[32];
            var hotMini = new byte[32];
            random.NextBytes(coldMini);
            random.NextBytes(hotMini);
            using (var coldKey = WalletKey.FromMiniSecret(coldMini))
            using (var hotKey = WalletKey.FromMiniSecret(hotMini))
            {
                var wallet = new LocalWallet(name, "default", wallets);
                wallet.CreateColdkey(coldKey, password: null, overwrite: true);
                wallet.CreateHotkey(hotKey, password: null, overwrite: true);
            }
            var person = new DemoPerson(name, role, Sr25519KeyPair.FromMiniSecret(coldMini), Sr25519KeyPair.FromMiniSecret(hotMini)) { Kind = kind };
            Array.Clear(coldMini);
            Array.Clear(hotMini);
            return person;
        }
        var owner = Make("owner", "owner");
        var validator = Make("validator", "validator");
        var servers = Enumerable.Range(1, options.Servers).Select(i => Make($"server{i}", "server")).ToArray();
        var bad = Enumerable.Range(1, options.BadServers).Select(i => Make($"bad{i}", "bad_server", options.BadKinds[(i - 1) % options.BadKinds.Count])).ToArray();
        return new DemoPeople(owner, validator, servers, bad);
    }

    public void Dispose()
    {
        foreach (var p in All) p.Dispose();
    }
}
