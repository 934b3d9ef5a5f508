using System.Text;
using System.Text.Json;
using Akka.Actor;
using Akka.Configuration;
using Bittensor.Actors;
using Bittensor.Actors.Axon;
using Bittensor.Core.Scale;
using Bittensor.Protocol;
using Bittensor.Protocol.Wire;
using Google.Protobuf;
using Grpc.Core;

namespace Bittensor.Fuzz.Tests;

/// <summary>
/// One fuzz target: <see cref="Run"/> feeds one input to the code under test and lets only an unexpected failure escape
/// (each target catches the exception types its API documents for bad input; anything else — an
/// <see cref="IndexOutOfRangeException"/>, a <see cref="NullReferenceException"/>, an overflow, a gRPC Unknown status —
/// is a finding).
/// </summary>
internal sealed class FuzzTarget(string name, Action<byte[]> run, int maxLength, int iterations, params string[] dictionary)
{
    public string Name { get; } = name;

    public void Run(byte[] input) => run(input);

    /// <summary>Longest input the mutator makes.</summary>
    public int MaxLength { get; } = maxLength;

    /// <summary>Mutated inputs per CI run (the test's budget; BT_FUZZ_SCALE multiplies it).</summary>
    public int Iterations { get; } = iterations;

    /// <summary>Tokens the mutator inserts (keywords of the format).</summary>
    public IReadOnlyList<byte[]> Dictionary { get; } = [.. dictionary.Select(Encoding.UTF8.GetBytes)];

    public override string ToString() => Name;
}

/// <summary>The targets, by name (docs/fuzzing.md lists what each reaches).</summary>
internal static class FuzzTargets
{
    public static IReadOnlyList<string> Names { get; } = ["tensor", "msgpack", "axon", "scale", "metadata", "keyfile", "jsonrpc", "hocon", "cli", "h2", "h2client"];

    public static FuzzTarget Get(string name) => name switch
    {
        "tensor" => new FuzzTarget(name, Tensor, 4096, 100_000, "nd", "type", "kind", "shape", "data", "<f4", "<f8", "<i4", "<i8", "|u1"),
        "msgpack" => new FuzzTarget(name, MsgPack, 1024, 100_000),
        "axon" => new FuzzTarget(name, Axon, 16_384, 5_000),
        "scale" => new FuzzTarget(name, Scale, 2048, 50_000),
        "metadata" => new FuzzTarget(name, Metadata, 32_768, 2_000),
        "keyfile" => new FuzzTarget(name, KeyfileTarget, 4096, 1_500, "\"secretPhrase\"", "\"secretSeed\"", "\"privateKey\"", "\"publicKey\"", "\"accountId\"",
            "\"ss58Address\"", "0x", "$NACL", "$ANSIBLE_VAULT;1.1;AES256\n", "gAAAAA", "null", "true", "[]", "{}", "\\u0000"),
        "jsonrpc" => new FuzzTarget(name, JsonRpc, 4096, 5_000, "\"jsonrpc\":\"2.0\"", "\"id\":", "\"method\":", "\"params\":", "[", "]", "{", "}", "null",
            "\"0x\"", "\"chain_getBlockHash\"", "\"state_getStorage\"", "\"state_call\"", "\"author_submitExtrinsic\"", "\"chain_subscribeNewHeads\"",
            "\"state_getKeysPaged\"", "\"system_accountNextIndex\"", "\"state_getMetadata\"", "\"chain_getHeader\"", "\"chain_getBlock\"", "1e400", "-1", "18446744073709551616"),
        "hocon" => new FuzzTarget(name, Hocon, 4096, 3_000, "bittensor.", "axon.", "port", " = ", "${", "}", "include ", "\"", "\n", "[", "]", "{", "}",
            "ms", "s", "-1", "1e309", "on", "off", "null", "+=", "//", "#", "\"\"\"", "9223372036854775808"),
        "cli" => new FuzzTarget(name, Cli, 1024, 10_000, "axon", "serve", "query", "wallet", "new_coldkey", "run", "server", "demo", "metagraph", "--config",
            "--metrics.port", "--axon.port", "--json", "--netuid", "--uri", "//Alice", "\0", "--", "-", "=", "${x}", "\"", "\n"),
        "h2" => new FuzzTarget(name, H2Frames, 8192, 5_000, "/Bittensor/Forward", "/Bittensor/Backward", "application/grpc", "POST", "trailers",
            ":path", ":method", ":scheme", "bittensor-signature", "grpc-timeout", "\u0000\u0000\u0000\u0001", "\u0000\u0000\u0004\u0008", "\u007f\u00ff\u00ff\u00ff"),
        "h2client" => new FuzzTarget(name, H2ClientTarget.Run, 8192, 5_000, "application/grpc", "grpc-status", "grpc-message", ":status", "content-type",
            "too_many_pings", "%", "\u0000\u0000\u0000\u0001", "\u0000\u0000\u0000\u0003", "\u0000\u0000\u0000\u0005", "\u007f\u00ff\u00ff\u00ff", "\u0000\u0010\u0000\u0000"),
        _ => throw new ArgumentException($"unknown fuzz target '{name}' (known: {string.Join(", ", Names)})", nameof(name)),
    };

    // --- tensor codec: DecodeBuffer never throws; a proto Tensor decodes or fails with a result -----------------------
    private static void Tensor(byte[] input)
    {
        var result = TensorCodec.DecodeBuffer(input);
        if (result.IsSuccess)
        {
            // A decoded tensor's data is exactly product(shape) × itemsize bytes of the buffer.
            var t = result.Tensor;
            long product = 1;
            foreach (var d in t.ShapeToArray()) product *= d;
            if (product * TensorCodec.ItemSize(t.DataType) != t.Data.Length)
                throw new FuzzFinding($"decoded tensor: shape [{string.Join(",", t.ShapeToArray())}] disagrees with {t.Data.Length} data bytes");
        }
        Protocol.Wire.Tensor proto;
        try
        {
            proto = Protocol.Wire.Tensor.Parser.ParseFrom(input);
        }
        catch (InvalidProtocolBufferException)
        {
            return;
        }
        _ = TensorCodec.Decode(proto);
    }

    // --- msgpack reader: a program of reads (first byte of each step picks the read) over the rest -------------------
    private static void MsgPack(byte[] input)
    {
        if (input.Length == 0) return;
        var steps = Math.Min((int)input[0], 64);
        var reader = new MsgPackReader(input.AsSpan(1));
        for (var i = 0; i < steps; i++)
        {
            var ok = (i % 6) switch
            {
                0 => reader.TryReadMapHeader(out _),
                1 => reader.TryReadArrayHeader(out _),
                2 => reader.TryReadBool(out _),
                3 => reader.TryReadBin(out _, out _),
                4 => reader.TryReadBytesOrString(out var start, out var length) && Check(start, length, input.Length - 1),
                _ => reader.TryReadInt64(out _) == IntStatus.Ok,
            };
            if (!ok) reader = new MsgPackReader(input.AsSpan(1 + Math.Min(i + 1, input.Length - 1)));
        }

        static bool Check(int start, int length, int size) =>
            start >= 0 && length >= 0 && start + length <= size ? true : throw new FuzzFinding($"msgpack slice {start}+{length} outside {size} bytes");
    }

    // --- a whole Forward/Backward through the axon (in-memory transport, the same AxonService as Kestrel serves) -------
    private static readonly Lazy<AxonFixture> AxonHost = new(() => new AxonFixture());

    private static void Axon(byte[] input)
    {
        if (input.Length == 0) return;
        TensorMessage request;
        try
        {
            request = TensorMessage.Parser.ParseFrom(input.AsSpan(1));
        }
        catch (InvalidProtocolBufferException)
        {
            return;
        }
        AxonHost.Value.Call((input[0] & 1) == 1 ? BittensorMethod.Backward : BittensorMethod.Forward, request);
    }

    // --- h2: the lean server's frame parser, HPACK decoder, flow control and call state, without a socket --------------
    private sealed class H2FuzzService : IBittensorService
    {
        public Task<TensorMessage> HandleAsync(BittensorMethod method, TensorMessage request, InboundCall call) =>
            request.Hotkey == "throw" ? throw new InvalidOperationException("handler failed") : Task.FromResult(new TensorMessage { Message = request.Hotkey });

        public ValueTask<HeaderDecision> CheckHeadersAsync(BittensorMethod method, Grpc.Core.Metadata headers, CancellationToken cancellationToken) =>
            ValueTask.FromResult(headers.GetValue("x-refuse") is { } r
                ? r == "answer" ? HeaderDecision.Reply(new TensorMessage { Message = "early" }) : HeaderDecision.Refuse(new Grpc.Core.Status(StatusCode.Unauthenticated, r))
                : HeaderDecision.Proceed(null));
    }

    private static readonly Lazy<LeanServer> H2Server = new(() => new LeanServer(new LeanServerTransport(),
        new ServerTransportOptions("127.0.0.1", 0, 64 * 1024, 64 * 1024, 16, 16 * 1024,
            new ServerLimits(4096, 0, 0, 0, 0, TimeSpan.FromSeconds(1), ExemptLoopback: true)), new H2FuzzService()));

    /// <summary>The client preface and an empty SETTINGS frame: every input starts after the handshake.</summary>
    internal static readonly byte[] H2Handshake = [.. "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"u8, 0, 0, 0, 4, 0, 0, 0, 0, 0];

    private static void H2Frames(byte[] input)
    {
        var connection = new Protocol.Lean.H2Connection(H2Server.Value, null, null);
        try
        {
            if (!connection.Feed(H2Handshake)) throw new FuzzFinding("the handshake alone closed the connection");
            connection.Feed(input);
            if (connection.OpenStreams > 16) throw new FuzzFinding($"{connection.OpenStreams} streams open over the limit of 16");
        }
        finally
        {
            connection.Abort();
        }
    }

    // --- SCALE: a program of primitive reads, then the generic decoder of our node's registry at a chosen type ---------
    private static readonly Lazy<Chain.Substrate.RuntimeMetadata> NodeMetadata =
        new(() => Chain.Local.LocalnetMetadata.For(new Chain.Local.LocalnetOptions()).Metadata);

    private static void Scale(byte[] input)
    {
        if (input.Length < 2) return;
        try
        {
            var reader = new ScaleReader(input.AsSpan(2));
            var steps = input[0] % 32;
            for (var i = 0; i < steps && reader.Remaining > 0; i++)
            {
                switch ((input[1] + i) % 12)
                {
                    case 0: reader.U8(); break;
                    case 1: reader.Bool(); break;
                    case 2: reader.U32(); break;
                    case 3: reader.CompactU64(); break;
                    case 4: reader.CompactU32(); break;
                    case 5: reader.CompactU128(); break;
                    case 6: reader.CompactBig(); break;
                    case 7: reader.Bytes(1 << 16); break;
                    case 8: reader.String(1 << 16); break;
                    case 9: reader.VecU16(1 << 14); break;
                    case 10: reader.OptionTag(); break;
                    default: reader.U128(); break;
                }
            }
        }
        catch (ScaleException)
        {
        }
        var types = NodeMetadata.Value.Types;
        var typeId = (uint)((input[0] << 8 | input[1]) % types.Types.Length);
        try
        {
            _ = types.Decode(types.Types[(int)typeId].Id, input.AsSpan(2));
        }
        catch (ScaleException)
        {
        }
    }

    // --- metadata decoder (V14/V15 prefixed blobs) --------------------------------------------------------------------
    private static void Metadata(byte[] input)
    {
        try
        {
            _ = Chain.Substrate.RuntimeMetadata.Decode(input);
        }
        catch (Exception e) when (e is ScaleException or Chain.Substrate.MetadataException)
        {
            // Both are Decode's documented refusals (MetadataException: a bad type reference, an unsupported version);
            // until AFL++ reached the registry's checks (session 7) the target allowed only ScaleException.
        }
    }

    // --- keyfiles: every format btcli wrote, through Keyfile.Read -----------------------------------------------------
    private static readonly string KeyfileDir = TempFolder.Create("bt-fuzz-keyfile-");

    private static void KeyfileTarget(byte[] input)
    {
        var path = Path.Combine(KeyfileDir, $"k{Environment.CurrentManagedThreadId}");
        File.WriteAllBytes(path, input);
        try
        {
            var format = Wallet.Keyfile.DetectFormat(path);
            // $NACL (Argon2i, 512 MiB) and Fernet (PBKDF2 × 10^7) cost seconds per try by design: their headers are
            // checked without a password (PasswordRequired); Ansible Vault's 10^4-round PBKDF2 is cheap enough to run.
            var password = format is Wallet.KeyfileFormat.Nacl or Wallet.KeyfileFormat.Fernet ? null : Wallet.PasswordSource.FromCallback(_ => "fuzz");
            using var key = Wallet.Keyfile.Read(path, password);
        }
        catch (Wallet.KeyfileException)
        {
        }
    }

    // --- JSON-RPC requests of our node (src/Bittensor.Chain.Node): every input gets a JSON answer or none -------------
    private static readonly Lazy<NodeFixture> Node = new(() => new NodeFixture());

    private static void JsonRpc(byte[] input)
    {
        var answer = Node.Value.Handle(input);
        if (answer is null) return;
        try
        {
            using var doc = JsonDocument.Parse(answer);
        }
        catch (JsonException e)
        {
            throw new FuzzFinding($"the node answered something that is not JSON ({e.Message}): {Encoding.UTF8.GetString(answer)}");
        }
    }

    // --- HOCON settings: parse, then every settings record over the reference -----------------------------------------
    private static void Hocon(byte[] input)
    {
        var text = Encoding.UTF8.GetString(input);
        if (text.Contains("include", StringComparison.Ordinal)) return; // include reads files: not a parser question
        Config config;
        try
        {
            config = HoconText.Parse(text).WithFallback(BittensorRuntime.ReferenceConfig);
        }
        catch (Exception e) when (HoconParseFailure(e))
        {
            return;
        }
        foreach (var (path, create) in Settings)
        {
            try
            {
                _ = create(BittensorRuntime.Section(config, path));
            }
            catch (ConfigurationException)
            {
            }
        }
        try
        {
            _ = Neurons.Demo.DemoOptions.Create(config);
        }
        catch (Exception e) when (e is ConfigurationException or ArgumentException)
        {
        }
    }

    /// <summary>What Akka's HOCON parser throws for text that is not HOCON (btcli's CliConfig turns any of them into one line).</summary>
    internal static bool HoconParseFailure(Exception e) =>
        e is ConfigurationException or FormatException || e.GetType().FullName!.StartsWith("Hocon.", StringComparison.Ordinal)
            || e.GetType().Name.Contains("Hocon", StringComparison.Ordinal);

    private static readonly (string Path, Func<Config, object> Create)[] Settings =
    [
        (AxonSettings.SectionPath, c => AxonSettings.Create(c)),
        (Actors.Dendrite.DendriteSettings.SectionPath, c => Actors.Dendrite.DendriteSettings.Create(c)),
        (Actors.Chain.SubtensorSettings.SectionPath, c => Actors.Chain.SubtensorSettings.Create(c)),
        (Actors.Chain.LocalnetSettings.SectionPath, c => Actors.Chain.LocalnetSettings.Create(c)),
        (Actors.Metagraph.MetagraphSettings.SectionPath, c => Actors.Metagraph.MetagraphSettings.Create(c)),
        (Actors.Metrics.MetricsSettings.SectionPath, c => Actors.Metrics.MetricsSettings.Create(c)),
        (Actors.ModelHost.ModelSettings.SectionPath, c => Actors.ModelHost.ModelSettings.Create(c)),
        (Actors.Wallet.WalletSettings.SectionPath, c => Actors.Wallet.WalletSettings.Create(c)),
        (Neurons.Pipelines.PipelineSettings.SectionPath, c => Neurons.Pipelines.PipelineSettings.Create(c)),
        (Neurons.Pipelines.NucleusSettingsHocon.SectionPath, c => Neurons.Pipelines.NucleusSettingsHocon.Create(c)),
        (Neurons.Roles.ValidatorOptions.SectionPath, c => Neurons.Roles.ValidatorOptions.Create(c)),
    ];

    // --- CLI: btcli's whole command tree parses any argv; a flag value survives the HOCON layering unchanged ---------
    private static readonly Lazy<System.CommandLine.RootCommand> Root = new(CliFixture.Root);

    private static void Cli(byte[] input)
    {
        var text = Encoding.UTF8.GetString(input);
        var args = text.Replace("\0", "", StringComparison.Ordinal).Split('\n'); // an argv string cannot hold NUL
        _ = Bittensor.Cli.CliApp.Parse(Root.Value, args); // as btcli parses (no response files: `@.` crashed it, AFL++ session 7)
        // CliConfig.Load writes each flag as `key = <literal>` HOCON: the value read back must be the value given.
        var value = args[^1];
        string line;
        try
        {
            line = Bittensor.Cli.CliConfig.FlagLine("bittensor.x", value);
        }
        catch (Bittensor.Cli.CliException)
        {
            return; // refused with a message (whitespace at an end)
        }
        string? back;
        try
        {
            back = ConfigurationFactory.ParseString(line).GetString("bittensor.x");
        }
        catch (Exception e) when (HoconParseFailure(e))
        {
            throw new FuzzFinding($"flag value {JsonSerializer.Serialize(value)} as HOCON {line} does not parse: {e.GetType().Name}: {e.Message}");
        }
        if (!string.Equals(back, value, StringComparison.Ordinal))
            throw new FuzzFinding($"flag value {JsonSerializer.Serialize(value)} came back from HOCON as {JsonSerializer.Serialize(back)}");
    }
}

/// <summary>A temporary folder of this process, deleted when it exits.</summary>
internal static class TempFolder
{
    public static string Create(string prefix)
    {
        var dir = Directory.CreateTempSubdirectory(prefix).FullName;
        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            try
            {
                Directory.Delete(dir, recursive: true);
            }
            catch (IOException)
            {
            }
        };
        return dir;
    }
}

/// <summary>A target found a wrong answer (not an exception of the code under test).</summary>
internal sealed class FuzzFinding(string message) : Exception(message);
