using System.Text.Json;

namespace Bittensor.Core.Tests.Crypto;

/// <summary>Loads Fixtures/keys.json (polkadot-js util-crypto 14.0.3) once.</summary>
internal static class KeyVectors
{
    private static readonly Lazy<JsonElement> Root = new(() =>
    {
        var path = Path.Combine(AppContext.BaseDirectory, "Fixtures", "keys.json");
        using var doc = JsonDocument.Parse(File.ReadAllText(path));
        return doc.RootElement.Clone();
    });

    internal static JsonElement Section(string name) => Root.Value.GetProperty(name);

    internal static JsonElement Item(string section, int index) => Section(section)[index];

    /// <summary>Row indices of a section, for xunit theories (names stay short and stable).</summary>
    internal static TheoryData<int> Indices(string section)
    {
        var data = new TheoryData<int>();
        for (var i = 0; i < Section(section).GetArrayLength(); i++) data.Add(i);
        return data;
    }

    internal static string Str(this JsonElement e, string name) => e.GetProperty(name).GetString()!;

    internal static byte[] Bytes(this JsonElement e, string name) => Hex.Decode(e.Str(name));

    internal static string Hx(ReadOnlySpan<byte> b) => Hex.Encode(b);
}
