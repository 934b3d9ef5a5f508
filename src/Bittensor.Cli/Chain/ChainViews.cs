using System.Globalization;
using System.Text.Json.Serialization;
using Bittensor.Actors.Metagraph;
using Bittensor.Core.Domain;
using Spectre.Console;

namespace Bittensor.Cli.Chain;

/// <summary>One metagraph row as btcli prints it (table or JSON).</summary>
internal sealed record NeuronView(
    [property: JsonPropertyName("uid")] int Uid,
    [property: JsonPropertyName("hotkey")] string Hotkey,
    [property: JsonPropertyName("coldkey")] string Coldkey,
    [property: JsonPropertyName("stake")] double Stake,
    [property: JsonPropertyName("stake_rao")] ulong StakeRao,
    [property: JsonPropertyName("rank")] double Rank,
    [property: JsonPropertyName("trust")] double Trust,
    [property: JsonPropertyName("consensus")] double Consensus,
    [property: JsonPropertyName("incentive")] double Incentive,
    [property: JsonPropertyName("dividends")] double Dividends,
    [property: JsonPropertyName("emission")] double Emission,
    [property: JsonPropertyName("emission_rao")] ulong EmissionRao,
    [property: JsonPropertyName("validator_trust")] double ValidatorTrust,
    [property: JsonPropertyName("validator_permit")] bool ValidatorPermit,
    [property: JsonPropertyName("active")] bool Active,
    [property: JsonPropertyName("last_update")] ulong LastUpdate,
    [property: JsonPropertyName("axon")] string Axon)
{
    /// <summary>Row <paramref name="uid"/> of a snapshot.</summary>
    public static NeuronView From(MetagraphSnapshot s, int uid) => new(uid, s.Hotkeys[uid], s.Coldkeys[uid], s.S[uid], s.StakeRao[uid],
        s.R[uid], s.T[uid], s.C[uid], s.I[uid], s.D[uid], s.E[uid], s.EmissionRao[uid], s.ValidatorTrust[uid], s.ValidatorPermit[uid],
        s.Active[uid], s.LastUpdate[uid], s.Endpoints[uid].ToString());
}

/// <summary>A metagraph as <c>btcli metagraph --json</c> prints it.</summary>
internal sealed record MetagraphView(
    [property: JsonPropertyName("network")] string Network,
    [property: JsonPropertyName("netuid")] int Netuid,
    [property: JsonPropertyName("block")] ulong Block,
    [property: JsonPropertyName("n")] int N,
    [property: JsonPropertyName("neurons")] IReadOnlyList<NeuronView> Neurons)
{
    public static MetagraphView From(MetagraphSnapshot s) =>
        new(s.Network, s.Netuid, s.Block, s.N, Enumerable.Range(0, s.N).Select(i => NeuronView.From(s, i)).ToArray());
}

/// <summary>Spectre tables for the chain verbs; written to <see cref="Console.Out"/> so redirection and tests see them.</summary>
internal static class ChainTables
{
    public static IAnsiConsole Console()
    {
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(System.Console.Out) });
        if (System.Console.IsOutputRedirected) console.Profile.Width = 240;
        return console;
    }

    public static string Short(string ss58) => ss58.Length <= 14 ? ss58 : ss58[..6] + "…" + ss58[^6..];

    public static string F(double v) => v.ToString("0.00000", CultureInfo.InvariantCulture);

    public static string Tao(double v) => "τ" + v.ToString("0.000000000", CultureInfo.InvariantCulture);

    public static Table Neurons(IEnumerable<NeuronView> rows, bool withNetuid = false, IReadOnlyList<int>? netuids = null)
    {
        var t = new Table().Border(TableBorder.Simple);
        if (withNetuid) t.AddColumn("NETUID");
        foreach (var c in new[] { "UID", "HOTKEY", "STAKE", "RANK", "TRUST", "CONSENSUS", "INCENTIVE", "DIVIDENDS", "EMISSION", "VTRUST", "VPERMIT", "AXON" })
            t.AddColumn(new TableColumn(c) { Alignment = c is "HOTKEY" or "AXON" ? Justify.Left : Justify.Right });
        var i = 0;
        foreach (var r in rows)
        {
            var cells = new List<string>();
            if (withNetuid) cells.Add(netuids![i].ToString(CultureInfo.InvariantCulture));
            cells.AddRange([r.Uid.ToString(CultureInfo.InvariantCulture), Short(r.Hotkey), Tao(r.Stake), F(r.Rank), F(r.Trust), F(r.Consensus),
                F(r.Incentive), F(r.Dividends), Tao(r.Emission), F(r.ValidatorTrust), r.ValidatorPermit ? "*" : "", r.Axon]);
            t.AddRow(cells.Select(Markup.Escape).ToArray());
            i++;
        }
        return t;
    }

    public static Table Subnets(IEnumerable<SubnetInfo> subnets)
    {
        var t = new Table().Border(TableBorder.Simple);
        foreach (var c in new[] { "NETUID", "N", "MAX_N", "TEMPO", "EMISSION/BLOCK", "BURN", "OWNER" }) t.AddColumn(c);
        foreach (var s in subnets)
            t.AddRow(Markup.Escape(s.Netuid.ToString(CultureInfo.InvariantCulture)), s.N.ToString(CultureInfo.InvariantCulture),
                s.Hyperparameters.MaxAllowedUids.ToString(CultureInfo.InvariantCulture), s.Hyperparameters.Tempo.ToString(CultureInfo.InvariantCulture),
                Markup.Escape(s.EmissionPerBlock.ToString()), Markup.Escape(new Balance(s.Hyperparameters.Burn).ToString()), Markup.Escape(Short(s.Owner.ToSs58())));
        return t;
    }
}
