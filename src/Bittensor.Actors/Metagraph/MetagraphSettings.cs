using Akka.Configuration;
using Bittensor.Actors.Chain;

namespace Bittensor.Actors.Metagraph;

/// <summary>The <c>bittensor.metagraph</c> section: sync cadence and where snapshots are saved.</summary>
public sealed record MetagraphSettings
{
    /// <summary>Re-sync every N new blocks (1 = every block).</summary>
    public int SyncEveryBlocks { get; init; } = 1;

    /// <summary>Root folder of saved snapshots (home-expanded); files are <c>&lt;Path&gt;/&lt;network&gt;/netuid&lt;N&gt;.bin</c>.</summary>
    public string Path { get; init; } = ReferenceConfig.ExpandHome("~/.bittensor/metagraphs");

    /// <summary>Whether each synced snapshot is saved to <see cref="Path"/>.</summary>
    public bool Save { get; init; } = true;

    /// <summary>Longest a sync may take before it is abandoned (the next block starts another).</summary>
    public TimeSpan SyncTimeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>Reads the <c>bittensor.metagraph</c> section.</summary>
    public static MetagraphSettings Create(Config section)
    {
        ArgumentNullException.ThrowIfNull(section);
        return new MetagraphSettings
        {
            SyncEveryBlocks = section.GetInt("sync_every_blocks", 1),
            Path = ReferenceConfig.ExpandHome(section.GetString("path", "~/.bittensor/metagraphs")),
            Save = section.GetBoolean("save", true),
            SyncTimeout = section.GetTimeSpan("sync_timeout", TimeSpan.FromSeconds(60)),
        }.Validate();
    }

    /// <summary>The reference defaults from the embedded <c>bittensor.conf</c>.</summary>
    public static MetagraphSettings Default => Create(ReferenceConfig.Section("bittensor.metagraph"));

    /// <summary>Throws <see cref="ArgumentException"/> naming the first invalid key.</summary>
    public MetagraphSettings Validate()
    {
        if (SyncEveryBlocks is < 1 or > 1_000_000) throw new ArgumentException("metagraph.sync_every_blocks must be in 1..1000000");
        if (string.IsNullOrWhiteSpace(Path)) throw new ArgumentException("metagraph.path must not be empty");
        if (SyncTimeout <= TimeSpan.Zero) throw new ArgumentException("metagraph.sync_timeout must be positive");
        return this;
    }
}
