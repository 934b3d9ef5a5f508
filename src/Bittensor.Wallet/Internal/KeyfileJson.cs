using System.Buffers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Bittensor.Core;
using Bittensor.Core.Crypto;

namespace Bittensor.Wallet.Internal;

/// <summary>
/// The keyfile JSON object btcli writes: <c>accountId</c>, <c>publicKey</c>, <c>secretPhrase</c>,
/// <c>secretSeed</c>, <c>privateKey</c>, <c>ss58Address</c>. Missing values are written as JSON null (what the
/// 2021 Python wrote; btwallet reads null as absent), so every file has all six keys. <c>privateKey</c> is written
/// in the canonical form btwallet loads; both forms are read.
/// </summary>
internal static class KeyfileJson
{
    public const int MaxStringLength = 4096;

    /// <summary>Serialises all six keys; the returned buffer holds secrets and must be zeroed by the caller.</summary>
    public static byte[] Serialize(WalletKey key, bool publicOnly)
    {
        var buffer = new ArrayBufferWriter<byte>(1024);
        byte[]? secret = null;
        try
        {
            using (var writer = new Utf8JsonWriter(buffer))
            {
                writer.WriteStartObject();
                writer.WriteString("accountId", key.PublicHex);
                writer.WriteString("publicKey", key.PublicHex);
                if (!publicOnly && key.Mnemonic is { } phrase) writer.WriteString("secretPhrase", phrase);
                else writer.WriteNull("secretPhrase");
                if (!publicOnly && key.MiniSecret.Length == 32) writer.WriteString("secretSeed", Hex.Encode(key.MiniSecret));
                else writer.WriteNull("secretSeed");
                if (!publicOnly && key.Pair is { } pair)
                {
                    secret = pair.ToCanonicalSecret();
                    writer.WriteString("privateKey", Hex.Encode(secret));
                }
                else writer.WriteNull("privateKey");
                writer.WriteString("ss58Address", key.Ss58Address);
                writer.WriteEndObject();
            }
            return buffer.WrittenSpan.ToArray();
        }
        finally
        {
            if (secret is not null) CryptographicOperations.ZeroMemory(secret);
            buffer.Clear(); // ArrayBufferWriter.Clear zeroes the written bytes
        }
    }

    /// <summary>
    /// Parses keyfile JSON with btwallet's precedence secretPhrase → secretSeed → privateKey → ss58Address and checks
    /// that any stored public key or address matches the derived key.
    /// </summary>
    public static WalletKey Parse(string path, ReadOnlySpan<byte> json)
    {
        string? phrase = null, seed = null, privateKey = null, ss58 = null, publicKey = null, accountId = null;
        try
        {
            var reader = new Utf8JsonReader(json, new JsonReaderOptions { MaxDepth = 4 });
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
                throw new KeyfileException(path, KeyfileError.Corrupt, "keyfile JSON is not an object");
            while (reader.Read() && reader.TokenType != JsonTokenType.EndObject)
            {
                if (reader.TokenType != JsonTokenType.PropertyName)
                    throw new KeyfileException(path, KeyfileError.Corrupt, "keyfile JSON is malformed");
                var name = reader.GetString();
                if (!reader.Read()) break;
                string? value = null;
                if (reader.TokenType == JsonTokenType.String)
                {
                    if (reader.ValueSpan.Length > MaxStringLength)
                        throw new KeyfileException(path, KeyfileError.Corrupt, $"keyfile field '{name}' is too long");
                    value = reader.GetString();
                }
                else if (reader.TokenType is JsonTokenType.StartObject or JsonTokenType.StartArray)
                {
                    reader.Skip();
                    continue;
                }
                switch (name)
                {
                    case "secretPhrase": phrase = value; break;
                    case "secretSeed": seed = value; break;
                    case "privateKey": privateKey = value; break;
                    case "ss58Address": ss58 = value; break;
                    case "publicKey": publicKey = value; break;
                    case "accountId": accountId = value; break;
                }
            }
            if (reader.TokenType != JsonTokenType.EndObject)
                throw new KeyfileException(path, KeyfileError.Corrupt, "keyfile JSON is truncated");
        }
        catch (JsonException)
        {
            throw new KeyfileException(path, KeyfileError.Corrupt, "keyfile JSON is malformed or truncated");
        }
        catch (InvalidOperationException)
        {
            // Utf8JsonReader.GetString throws this for strings that are not valid UTF-8.
            throw new KeyfileException(path, KeyfileError.Corrupt, "keyfile JSON holds text that is not valid UTF-8");
        }

        WalletKey key;
        string source;
        try
        {
            if (!string.IsNullOrWhiteSpace(phrase)) { source = "secretPhrase"; key = WalletKey.FromMnemonic(phrase); }
            else if (!string.IsNullOrWhiteSpace(seed)) { source = "secretSeed"; key = FromHex(seed, 32, WalletKey.FromMiniSecret); }
            else if (!string.IsNullOrWhiteSpace(privateKey)) { source = "privateKey"; key = FromHex(privateKey, 64, WalletKey.FromPrivateKey); }
            else if (!string.IsNullOrWhiteSpace(ss58)) { source = "ss58Address"; key = WalletKey.FromSs58(ss58); }
            else if (!string.IsNullOrWhiteSpace(publicKey ?? accountId)) { source = "publicKey"; key = FromHex(publicKey ?? accountId!, 32, WalletKey.FromPublicKey); }
            else throw new KeyfileException(path, KeyfileError.Corrupt, "keyfile JSON holds no key (no secretPhrase, secretSeed, privateKey, ss58Address or publicKey)");
        }
        catch (FormatException e)
        {
            // FormatException texts from Core describe the shape (bad word, bad checksum, bad hex), never the value.
            throw new KeyfileException(path, KeyfileError.Corrupt, $"keyfile field is invalid: {e.Message}");
        }

        try
        {
            Check(path, key, source, "ss58Address", ss58 is null ? null : Ss58.TryDecode(ss58, out var fromSs58, out _) ? fromSs58 : []);
            Check(path, key, source, "publicKey", publicKey is null ? null : Hex.TryDecode(publicKey, out var pk) ? pk : []);
            Check(path, key, source, "accountId", accountId is null ? null : Hex.TryDecode(accountId, out var id) ? id : []);
        }
        catch
        {
            key.Dispose();
            throw;
        }
        return key;
    }

    /// <summary>A 2021 <c>coldkeypub.txt</c>: one line <c>0x</c> + 64 hex digits.</summary>
    public static WalletKey ParsePublicHex(string path, ReadOnlySpan<byte> data)
    {
        var text = Encoding.ASCII.GetString(KeyfileFormats.TrimAscii(data));
        if (!Hex.TryDecode(text, out var bytes) || bytes.Length != 32)
            throw new KeyfileException(path, KeyfileError.Corrupt, "public key file must hold 0x + 64 hex digits");
        return WalletKey.FromPublicKey(bytes);
    }

    private static void Check(string path, WalletKey key, string source, string field, byte[]? stored)
    {
        if (stored is null || source == field) return;
        if (!key.PublicKey.Span.SequenceEqual(stored))
            throw new KeyfileException(path, KeyfileError.Corrupt, $"keyfile field '{field}' does not match the key derived from '{source}'");
    }

    private delegate WalletKey FromBytes(ReadOnlySpan<byte> bytes);

    private static WalletKey FromHex(string hex, int length, FromBytes make)
    {
        if (!Hex.TryDecode(hex, out var bytes) || bytes.Length != length)
            throw new FormatException($"expected 0x + {length * 2} hex digits");
        try { return make(bytes); }
        finally { CryptographicOperations.ZeroMemory(bytes); }
    }
}
