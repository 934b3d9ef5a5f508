namespace Bittensor.Neurons;

/// <summary>Where a neuron keeps its own state, as bittensor does (<c>~/.bittensor/miners/&lt;wallet&gt;/&lt;hotkey&gt;/netuid&lt;N&gt;/&lt;role&gt;/</c>).</summary>
public static class NeuronPaths
{
    /// <summary>The root of every neuron's state folder: <c>~/.bittensor/miners</c>.</summary>
    public static string Root => Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".bittensor", "miners");

    /// <summary><c>~/.bittensor/miners/&lt;wallet&gt;/&lt;hotkey&gt;/netuid&lt;N&gt;/&lt;role&gt;</c> (the role: server, validator or miner).</summary>
    public static string Default(string wallet, string hotkey, ushort netuid, string role)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(wallet);
        ArgumentException.ThrowIfNullOrWhiteSpace(hotkey);
        ArgumentException.ThrowIfNullOrWhiteSpace(role);
        foreach (var part in new[] { wallet, hotkey, role })
            if (part.IndexOfAny(['/', '\\']) >= 0 || part is "." or "..")
                throw new ArgumentException($"'{part}' is not a folder name");
        return Path.Combine(Root, wallet, hotkey, $"netuid{netuid}", role);
    }
}
