using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Bittensor.Chain.Yuma;

/// <summary>
/// The JSON case format of <c>btcli localnet epoch</c> (docs/epoch-json.md). Input:
/// <c>{"block","tempo","emission_rao","hyperparams":{...},"neurons":[...],"prev_validator_permit":[...]}</c>;
/// output: <c>{"rank","trust","consensus","incentive","dividends","validator_trust","validator_permit",
/// "emission_rao","bonds",...}</c>. Reading is strict: unknown keys, missing keys, negative or out-of-range
/// numbers are reported as <see cref="EpochInputException"/> naming the JSON path.
/// </summary>
public static class EpochJson
{
    /// <summary>Largest accepted document, in bytes (a dense n = 4096 case is about 200 MB).</summary>
    public const long MaxDocumentBytes = 512L * 1024 * 1024;

    private static readonly JsonDocumentOptions DocOptions = new()
    {
        MaxDepth = 8,
        CommentHandling = JsonCommentHandling.Skip,
        AllowTrailingCommas = false,
    };

    private static readonly string[] InputKeys = ["block", "tempo", "emission_rao", "hyperparams", "neurons", "prev_validator_permit"];
    private static readonly string[] HyperKeys =
        ["kappa", "bonds_moving_average", "activity_cutoff", "max_allowed_validators", "immunity_period", "min_allowed_weights", "max_weights_limit"];
    private static readonly string[] NeuronKeys = ["uid", "stake_rao", "last_update", "block_at_registration", "weights", "bonds"];

    /// <summary>Parses an epoch case.</summary>
    /// <exception cref="EpochInputException">Malformed JSON or a field that is missing, unknown or out of range.</exception>
    public static EpochInput ReadInput(string json)
    {
        ArgumentNullException.ThrowIfNull(json);
        return ReadInput(Encoding.UTF8.GetBytes(json));
    }

    /// <summary>Parses an epoch case from UTF-8 bytes.</summary>
    /// <exception cref="EpochInputException">Malformed JSON or a field that is missing, unknown or out of range.</exception>
    public static EpochInput ReadInput(ReadOnlyMemory<byte> utf8)
    {
        if (utf8.Length > MaxDocumentBytes)
            throw new EpochInputException($"input: {utf8.Length} bytes, at most {MaxDocumentBytes} accepted");
        JsonDocument doc;
        try { doc = JsonDocument.Parse(utf8, DocOptions); }
        catch (JsonException e)
        {
            throw new EpochInputException($"input: not valid JSON ({FirstLine(e.Message)})", e);
        }
        using (doc)
        {
            var root = doc.RootElement;
            RequireObject(root, "$");
            CheckKeys(root, "$", InputKeys);
            var block = U64(Required(root, "block", "$"), "block");
            var tempo = U16(Required(root, "tempo", "$"), "tempo");
            var emission = U64(Required(root, "emission_rao", "$"), "emission_rao");
            var hpEl = Required(root, "hyperparams", "$");
            RequireObject(hpEl, "hyperparams");
            CheckKeys(hpEl, "hyperparams", HyperKeys);
            var hp = new YumaHyperparams(
                Kappa: U16(Required(hpEl, "kappa", "hyperparams"), "hyperparams.kappa"),
                BondsMovingAverage: U64(Required(hpEl, "bonds_moving_average", "hyperparams"), "hyperparams.bonds_moving_average"),
                ActivityCutoff: U16(Required(hpEl, "activity_cutoff", "hyperparams"), "hyperparams.activity_cutoff"),
                MaxAllowedValidators: U16(Required(hpEl, "max_allowed_validators", "hyperparams"), "hyperparams.max_allowed_validators"),
                ImmunityPeriod: U16(Required(hpEl, "immunity_period", "hyperparams"), "hyperparams.immunity_period"),
                MinAllowedWeights: U16(Required(hpEl, "min_allowed_weights", "hyperparams"), "hyperparams.min_allowed_weights"),
                MaxWeightsLimit: U16(Required(hpEl, "max_weights_limit", "hyperparams"), "hyperparams.max_weights_limit"));

            var neuronsEl = Required(root, "neurons", "$");
            RequireArray(neuronsEl, "neurons");
            int n = neuronsEl.GetArrayLength();
            if (n > YumaEpoch.MaxNeurons)
                throw new EpochInputException($"neurons: {n} entries, at most {YumaEpoch.MaxNeurons} allowed");
            var neurons = new EpochNeuron[n];
            int k = 0;
            foreach (var ne in neuronsEl.EnumerateArray())
            {
                string path = $"neurons[{k}]";
                RequireObject(ne, path);
                CheckKeys(ne, path, NeuronKeys);
                neurons[k] = new EpochNeuron(
                    Uid: U16(Required(ne, "uid", path), path + ".uid"),
                    StakeRao: U64(Required(ne, "stake_rao", path), path + ".stake_rao"),
                    LastUpdate: U64(Required(ne, "last_update", path), path + ".last_update"),
                    BlockAtRegistration: U64(Required(ne, "block_at_registration", path), path + ".block_at_registration"),
                    Weights: ne.TryGetProperty("weights", out var w) ? Pairs(w, path + ".weights", n) : [],
                    Bonds: ne.TryGetProperty("bonds", out var b) ? Pairs(b, path + ".bonds", n) : []);
                k++;
            }

            bool[]? prev = null;
            if (root.TryGetProperty("prev_validator_permit", out var pv) && pv.ValueKind != JsonValueKind.Null)
            {
                RequireArray(pv, "prev_validator_permit");
                prev = new bool[pv.GetArrayLength()];
                int q = 0;
                foreach (var e in pv.EnumerateArray())
                {
                    prev[q] = e.ValueKind switch
                    {
                        JsonValueKind.True => true,
                        JsonValueKind.False => false,
                        _ => throw new EpochInputException($"prev_validator_permit[{q}]: expected true or false"),
                    };
                    q++;
                }
            }

            var input = new EpochInput(block, tempo, emission, hp, neurons, prev);
            Prepared.From(input); // uid range, duplicates, permit length, stake range: fail here, not mid-epoch
            return input;
        }
    }

    /// <summary>Writes an epoch case (the inverse of <see cref="ReadInput(string)"/>).</summary>
    public static string WriteInput(EpochInput input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var sb = new StringBuilder();
        var hp = input.Hyperparams;
        sb.Append("{\n");
        Field(sb, "block", input.Block.ToString(CultureInfo.InvariantCulture));
        Field(sb, "tempo", input.Tempo.ToString(CultureInfo.InvariantCulture));
        Field(sb, "emission_rao", input.EmissionRao.ToString(CultureInfo.InvariantCulture));
        Field(sb, "hyperparams", string.Create(CultureInfo.InvariantCulture,
            $"{{\"kappa\": {hp.Kappa}, \"bonds_moving_average\": {hp.BondsMovingAverage}, \"activity_cutoff\": {hp.ActivityCutoff}, " +
            $"\"max_allowed_validators\": {hp.MaxAllowedValidators}, \"immunity_period\": {hp.ImmunityPeriod}, " +
            $"\"min_allowed_weights\": {hp.MinAllowedWeights}, \"max_weights_limit\": {hp.MaxWeightsLimit}}}"));
        sb.Append("  \"neurons\": [");
        for (int i = 0; i < input.Neurons.Count; i++)
        {
            var ne = input.Neurons[i];
            sb.Append(i == 0 ? "\n    " : ",\n    ");
            sb.Append(CultureInfo.InvariantCulture,
                $"{{\"uid\": {ne.Uid}, \"stake_rao\": {ne.StakeRao}, \"last_update\": {ne.LastUpdate}, \"block_at_registration\": {ne.BlockAtRegistration}, \"weights\": ");
            AppendPairs(sb, ne.Weights);
            sb.Append(", \"bonds\": ");
            AppendPairs(sb, ne.Bonds);
            sb.Append('}');
        }
        sb.Append(input.Neurons.Count == 0 ? "]" : "\n  ]");
        if (input.PrevValidatorPermit is { } pv)
        {
            sb.Append(",\n  \"prev_validator_permit\": ");
            AppendBools(sb, pv);
        }
        sb.Append("\n}\n");
        return sb.ToString();
    }

    /// <summary>Writes an epoch result: one key per line, arrays by uid.</summary>
    public static string WriteOutput(EpochOutput output)
    {
        ArgumentNullException.ThrowIfNull(output);
        var sb = new StringBuilder();
        sb.Append("{\n");
        Field(sb, "rank", Numbers(output.Rank));
        Field(sb, "trust", Numbers(output.Trust));
        Field(sb, "consensus", Numbers(output.Consensus));
        Field(sb, "incentive", Numbers(output.Incentive));
        Field(sb, "dividends", Numbers(output.Dividends));
        Field(sb, "validator_trust", Numbers(output.ValidatorTrust));
        var b = new StringBuilder();
        AppendBools(b, output.ValidatorPermit);
        Field(sb, "validator_permit", b.ToString());
        Field(sb, "emission_rao", Numbers(output.EmissionRao));
        Field(sb, "server_emission_rao", Numbers(output.ServerEmissionRao));
        Field(sb, "validator_emission_rao", Numbers(output.ValidatorEmissionRao));
        Field(sb, "pruning_scores", Numbers(output.PruningScores));
        b.Clear();
        AppendBools(b, output.Active);
        Field(sb, "active", b.ToString());
        sb.Append("  \"bonds\": [");
        for (int i = 0; i < output.Bonds.Length; i++)
        {
            sb.Append(i == 0 ? "\n    " : ",\n    ");
            AppendPairs(sb, output.Bonds[i]);
        }
        sb.Append(output.Bonds.Length == 0 ? "]\n}\n" : "\n  ]\n}\n");
        return sb.ToString();
    }

    /// <summary>Reads a result written by <see cref="WriteOutput"/> (for golden files and round trips).</summary>
    /// <exception cref="EpochInputException">Malformed JSON or a missing or out-of-range field.</exception>
    public static EpochOutput ReadOutput(string json)
    {
        ArgumentNullException.ThrowIfNull(json);
        JsonDocument doc;
        try { doc = JsonDocument.Parse(json, DocOptions); }
        catch (JsonException e) { throw new EpochInputException($"output: not valid JSON ({FirstLine(e.Message)})", e); }
        using (doc)
        {
            var r = doc.RootElement;
            RequireObject(r, "$");
            ushort[] U16s(string key) => [.. Arr(r, key).Select((e, i) => U16(e, $"{key}[{i}]"))];
            ulong[] U64s(string key) => [.. Arr(r, key).Select((e, i) => U64(e, $"{key}[{i}]"))];
            bool[] Bools(string key) => [.. Arr(r, key).Select((e, i) => e.ValueKind == JsonValueKind.True ? true
                : e.ValueKind == JsonValueKind.False ? false : throw new EpochInputException($"{key}[{i}]: expected true or false"))];
            var bondsEl = Arr(r, "bonds").ToArray();
            var bonds = new UidValue[bondsEl.Length][];
            for (int i = 0; i < bondsEl.Length; i++) bonds[i] = Pairs(bondsEl[i], $"bonds[{i}]", ushort.MaxValue + 1);
            return new EpochOutput(U16s("rank"), U16s("trust"), U16s("consensus"), U16s("incentive"), U16s("dividends"),
                U16s("validator_trust"), Bools("validator_permit"), U64s("emission_rao"), U64s("server_emission_rao"),
                U64s("validator_emission_rao"), U16s("pruning_scores"), Bools("active"), bonds);
        }
    }

    private static IEnumerable<JsonElement> Arr(JsonElement obj, string key)
    {
        var e = Required(obj, key, "$");
        RequireArray(e, key);
        return e.EnumerateArray();
    }

    private static UidValue[] Pairs(JsonElement el, string path, int n)
    {
        RequireArray(el, path);
        int count = el.GetArrayLength();
        if (count > n) throw new EpochInputException($"{path}: {count} entries, at most n = {n}");
        var result = new UidValue[count];
        int t = 0;
        foreach (var pair in el.EnumerateArray())
        {
            string p = $"{path}[{t}]";
            if (pair.ValueKind != JsonValueKind.Array || pair.GetArrayLength() != 2)
                throw new EpochInputException($"{p}: expected a pair [uid, u16]");
            result[t] = new UidValue(U16(pair[0], p + "[0] (uid)"), U16(pair[1], p + "[1] (value)"));
            t++;
        }
        return result;
    }

    private static JsonElement Required(JsonElement obj, string key, string path)
    {
        if (!obj.TryGetProperty(key, out var v) || v.ValueKind == JsonValueKind.Null)
            throw new EpochInputException($"{(path == "$" ? key : path + "." + key)}: missing");
        return v;
    }

    private static void RequireObject(JsonElement e, string path)
    {
        if (e.ValueKind != JsonValueKind.Object) throw new EpochInputException($"{path}: expected an object");
    }

    private static void RequireArray(JsonElement e, string path)
    {
        if (e.ValueKind != JsonValueKind.Array) throw new EpochInputException($"{path}: expected an array");
    }

    private static void CheckKeys(JsonElement obj, string path, string[] allowed)
    {
        foreach (var prop in obj.EnumerateObject())
            if (Array.IndexOf(allowed, prop.Name) < 0)
                throw new EpochInputException($"{path}: unknown key \"{prop.Name}\" (expected {string.Join(", ", allowed)})");
    }

    private static ulong U64(JsonElement e, string path)
    {
        if (e.ValueKind != JsonValueKind.Number || !e.TryGetUInt64(out var v))
            throw new EpochInputException($"{path}: expected an integer 0..{ulong.MaxValue}, got {Show(e)}");
        return v;
    }

    private static ushort U16(JsonElement e, string path)
    {
        if (e.ValueKind != JsonValueKind.Number || !e.TryGetUInt16(out var v))
            throw new EpochInputException($"{path}: expected a u16 integer 0..65535, got {Show(e)}");
        return v;
    }

    private static string Show(JsonElement e)
    {
        var raw = e.GetRawText();
        return raw.Length > 40 ? raw[..40] + "…" : raw;
    }

    private static string FirstLine(string s)
    {
        int i = s.IndexOf('\n', StringComparison.Ordinal);
        return i < 0 ? s : s[..i];
    }

    private static void Field(StringBuilder sb, string key, string value) =>
        sb.Append("  \"").Append(key).Append("\": ").Append(value).Append(",\n");

    private static string Numbers<T>(T[] values) where T : IFormattable
    {
        var sb = new StringBuilder(values.Length * 6 + 2).Append('[');
        for (int i = 0; i < values.Length; i++)
        {
            if (i > 0) sb.Append(", ");
            sb.Append(values[i].ToString(null, CultureInfo.InvariantCulture));
        }
        return sb.Append(']').ToString();
    }

    private static void AppendBools(StringBuilder sb, IReadOnlyList<bool> values)
    {
        sb.Append('[');
        for (int i = 0; i < values.Count; i++) sb.Append(i > 0 ? ", " : "").Append(values[i] ? "true" : "false");
        sb.Append(']');
    }

    private static void AppendPairs(StringBuilder sb, IReadOnlyList<UidValue> row)
    {
        sb.Append('[');
        for (int t = 0; t < row.Count; t++)
            sb.Append(t > 0 ? ", " : "").Append(CultureInfo.InvariantCulture, $"[{row[t].Uid}, {row[t].Value}]");
        sb.Append(']');
    }
}
