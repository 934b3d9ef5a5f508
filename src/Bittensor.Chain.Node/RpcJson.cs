using System.Buffers;
using System.Text.Json;
using Bittensor.Chain.Local;
using Bittensor.Core;

namespace Bittensor.Chain.Node;

/// <summary>JSON-RPC error codes: the standard ones and Substrate's author/pool codes.</summary>
public static class RpcErrors
{
    /// <summary>Invalid JSON.</summary>
    public const int ParseError = -32700;

    /// <summary>Not a JSON-RPC request object (or too large).</summary>
    public const int InvalidRequest = -32600;

    /// <summary>Unknown method.</summary>
    public const int MethodNotFound = -32601;

    /// <summary>Bad parameters.</summary>
    public const int InvalidParams = -32602;

    /// <summary>The node failed.</summary>
    public const int Internal = -32603;

    /// <summary>Client error (unknown block, state discarded, unknown runtime API …).</summary>
    public const int ClientError = -32000;

    /// <summary>Too many subscriptions or items.</summary>
    public const int LimitExceeded = -32005;

    /// <summary>The extrinsic could not be decoded (Substrate author error 1001).</summary>
    public const int BadFormat = 1001;

    /// <summary>Invalid transaction (1010): bad signature, outdated or future nonce, ancient birth block, …</summary>
    public const int InvalidTransaction = 1010;

    /// <summary>Unknown transaction validity (1011).</summary>
    public const int UnknownTransaction = 1011;

    /// <summary>Already in the pool (1013).</summary>
    public const int AlreadyImported = 1013;

    /// <summary>A transaction with the same nonce is already in the pool (1014).</summary>
    public const int PriorityTooLow = 1014;

    /// <summary>The pool is full (1016: immediately dropped).</summary>
    public const int ImmediatelyDropped = 1016;
}

/// <summary>A JSON-RPC error to answer with.</summary>
public sealed class RpcException(int code, string message, string? data = null) : Exception(message)
{
    /// <summary>The JSON-RPC error code.</summary>
    public int Code { get; } = code;

    /// <summary>Optional <c>data</c> of the error.</summary>
    public string? ErrorData { get; } = data;
}

/// <summary>Writes JSON-RPC messages and Substrate JSON shapes.</summary>
internal static class RpcJson
{
    public static byte[] Write(Action<Utf8JsonWriter> write)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var w = new Utf8JsonWriter(buffer)) write(w);
        return buffer.WrittenSpan.ToArray();
    }

    public static void WriteId(Utf8JsonWriter w, JsonElement? id)
    {
        w.WritePropertyName("id");
        if (id is { } e) e.WriteTo(w);
        else w.WriteNullValue();
    }

    public static void Result(Utf8JsonWriter w, JsonElement? id, Action<Utf8JsonWriter> result)
    {
        w.WriteStartObject();
        w.WriteString("jsonrpc", "2.0");
        w.WritePropertyName("result");
        result(w);
        WriteId(w, id);
        w.WriteEndObject();
    }

    public static void Error(Utf8JsonWriter w, JsonElement? id, int code, string message, string? data = null)
    {
        w.WriteStartObject();
        w.WriteString("jsonrpc", "2.0");
        w.WriteStartObject("error");
        w.WriteNumber("code", code);
        w.WriteString("message", message);
        if (data is not null) w.WriteString("data", data);
        w.WriteEndObject();
        WriteId(w, id);
        w.WriteEndObject();
    }

    public static byte[] Error(JsonElement? id, int code, string message, string? data = null) => Write(w => Error(w, id, code, message, data));

    public static byte[] Notification(string method, string subscription, Action<Utf8JsonWriter> result) => Write(w =>
    {
        w.WriteStartObject();
        w.WriteString("jsonrpc", "2.0");
        w.WriteString("method", method);
        w.WriteStartObject("params");
        w.WriteString("subscription", subscription);
        w.WritePropertyName("result");
        result(w);
        w.WriteEndObject();
        w.WriteEndObject();
    });

    public static string HexOf(ReadOnlySpan<byte> bytes) => Hex.Encode(bytes);

    public static void Header(Utf8JsonWriter w, LocalnetBlock b)
    {
        w.WriteStartObject();
        w.WriteString("parentHash", HexOf(b.ParentHash.Span));
        w.WriteString("number", "0x" + b.Number.ToString("x", System.Globalization.CultureInfo.InvariantCulture));
        w.WriteString("stateRoot", HexOf(b.StateRoot.Span));
        w.WriteString("extrinsicsRoot", HexOf(b.ExtrinsicsRoot.Span));
        w.WriteStartObject("digest");
        w.WriteStartArray("logs");
        w.WriteEndArray();
        w.WriteEndObject();
        w.WriteEndObject();
    }

    public static void StorageChangeSet(Utf8JsonWriter w, byte[] block, IEnumerable<(byte[] Key, byte[]? Value)> changes)
    {
        w.WriteStartObject();
        w.WriteString("block", HexOf(block));
        w.WriteStartArray("changes");
        foreach (var (key, value) in changes)
        {
            w.WriteStartArray();
            w.WriteStringValue(HexOf(key));
            if (value is null) w.WriteNullValue();
            else w.WriteStringValue(HexOf(value));
            w.WriteEndArray();
        }
        w.WriteEndArray();
        w.WriteEndObject();
    }
}
