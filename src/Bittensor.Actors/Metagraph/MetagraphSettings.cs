using Akka.Configuration;

namespace Bittensor.Actors.Metagraph;

/// <summary>The <c>bittensor.metagraph</c> section: sync cadence and where snapshots are saved.</summary>
public sealed record MetagraphSettings
{
    /// <summary>HOCON path of the section these settings are read from.</summary>
    public const string SectionPath = "bittensor.metagraph";

    /// <summary>The reference configuration's values (hocon/bittensor.conf), for code without an ActorSystem and tests.</summary>
    public static MetagraphSettings Default { get; } = Create(BittensorRuntime.Section(BittensorRuntime.ReferenceConfig, SectionPath));

    /// <summary>Re-sync every N new blocks (1 = every block).</summary>
    public required int SyncEveryBlocks { get; init; }

    /// <summary>Root folder of saved snapshots (home-expanded); files are <c>&lt;Path&gt;/&lt;network&gt;/netuid&lt;N&gt;.bin</c>.</summary>
    public required string Path { get; init; }

    /// <summary>Whether snapshots are used: loaded from <see cref="Path"/> at start and saved after each sync (off: neither).</summary>
    public required bool Save { get; init; }

    /// <summary>
    /// Sync at each of the subnet's epochs instead of every <see cref="SyncEveryBlocks"/> blocks: on the block where
    /// subtensor runs the epoch (<c>(block + netuid + 1) % (tempo + 1) == 0</c>), the tempo read with each sync.
    /// </summary>
    public required bool SyncAtTempo { get; init; }

    /// <summary>Longest a sync may take before it is abandoned (the next block starts another).</summary>
    public required TimeSpan SyncTimeout { get; init; }

    /// <summary>Reads the <c>bittensor.metagraph</c> section (every key required) and validates it.</summary>
    /// <exception cref="ConfigurationException">A key is missing or invalid; the message names it.</exception>
    public static MetagraphSettings Create(Config section)
    {
        var c = new HoconSection(section, SectionPath);
        var path = c.String("path");
        HoconSection.Require(!string.IsNullOrWhiteSpace(path), "bittensor.metagraph.path", path, "must not be empty");
        return new MetagraphSettings
        {
            SyncEveryBlocks = c.Int("sync_every_blocks"),
            Path = System.IO.Path.GetFullPath(Bittensor.Wallet.LocalWallet.ExpandHome(path)),
            Save = c.Bool("save"),
            SyncAtTempo = c.Bool("sync_at_tempo"),
            SyncTimeout = c.Duration("sync_timeout"),
        }.Validate();
    }

    /// <summary>Returns these settings when every value is usable.</summary>
    /// <exception cref="ConfigurationException">The first invalid value; the message names its key.</exception>
    public MetagraphSettings Validate()
    {
        HoconSection.Require(SyncEveryBlocks is >= 1 and <= 1_000_000, "bittensor.metagraph.sync_every_blocks", SyncEveryBlocks, "must be in 1..1000000");
        HoconSection.Require(!string.IsNullOrWhiteSpace(Path), "bittensor.metagraph.path", Path, "must not be empty");
        HoconSection.Require(SyncTimeout > TimeSpan.Zero, "bittensor.metagraph.sync_timeout", SyncTimeout, "must be positive");
        return this;
    }
}
