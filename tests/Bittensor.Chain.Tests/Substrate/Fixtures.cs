using System.Globalization;
using System.Numerics;
using System.Text.Json;
using Bittensor.Chain.Substrate;
using Bittensor.Core;
using Bittensor.Core.Domain;

namespace Bittensor.Chain.Tests.Substrate;

/// <summary>Fixtures recorded from subtensor spec 218 (see Fixtures/README.md); loaded once.</summary>
internal static class Fixtures
{
    private static string PathOf(string name) => Path.Combine(AppContext.BaseDirectory, "Fixtures", name);

    public static byte[] MetadataV14Bytes { get; } = Hex.Decode(File.ReadAllText(PathOf("subtensor-metadata.hex")).Trim());

    /// <summary>The raw <c>Metadata_metadata_at_version(15)</c> result: Option tag, compact length, prefixed metadata.</summary>
    public static byte[] MetadataV15Wrapped { get; } = Hex.Decode(File.ReadAllText(PathOf("subtensor-218-metadata-v15.hex")).Trim());

    public static RuntimeMetadata V14 { get; } = RuntimeMetadata.Decode(MetadataV14Bytes);

    public static RuntimeMetadata V15 { get; } = RuntimeMetadata.Decode(MetadataV15Wrapped);

    public static RuntimeMetadata Spec148 { get; } = RuntimeMetadata.Decode(Hex.Decode(File.ReadAllText(PathOf("local-148-metadata.hex")).Trim()));

    public static JsonElement Local148 { get; } = JsonDocument.Parse(File.ReadAllText(PathOf("local-148.json"))).RootElement;

    public static JsonElement Raonet { get; } = JsonDocument.Parse(File.ReadAllText(PathOf("raonet-218.json"))).RootElement;

    public static JsonElement Chain { get; } = JsonDocument.Parse(File.ReadAllText(PathOf("chain.json"))).RootElement;

    public static JsonElement Hashers { get; } = JsonDocument.Parse(File.ReadAllText(PathOf("hashers.json"))).RootElement;

    public static byte[] HexOf(JsonElement e, string property) => Hex.Decode(e.GetProperty(property).GetString()!);

    /// <summary>A storage-key argument as the recording script wrote it, as a value of type <paramref name="type"/>.</summary>
    public static ScaleValue Arg(PortableRegistry types, uint type, JsonElement json)
    {
        var t = types[type];
        if (t.Def is PrimitiveDef { Kind: PrimitiveKind.Bool }) return ScaleValue.Bool(json.GetBoolean());
        if (t.Def is PrimitiveDef) return ScaleValue.Int(BigInteger.Parse(json.GetString()!, CultureInfo.InvariantCulture));
        var text = json.GetString()!;
        if (t.PathText.EndsWith("AccountId32", StringComparison.Ordinal)) return ScaleValue.Account(AccountId.Parse(text));
        return ScaleValue.Bytes(Hex.Decode(text));
    }
}
