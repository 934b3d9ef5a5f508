using System.CommandLine;
using System.Text.Json;
using Bittensor.Chain.Substrate;
using Bittensor.Core;
using Bittensor.Core.Scale;

namespace Bittensor.Cli.Commands;

/// <summary>
/// <c>btcli substrate …</c>: offline tools over a runtime's metadata (the hex or binary that <c>state_getMetadata</c> or
/// <c>Metadata_metadata_at_version</c> return): list pallets, calls, storage, events and errors; build a storage key;
/// encode a call; decode <c>System.Events</c>. Nothing is hard-coded: every index, hasher and type comes from the file.
/// </summary>
internal static class SubstrateCommands
{
    private static readonly Option<FileInfo> MetadataFile = new("--metadata")
    {
        Description = "Runtime metadata file: 0x-hex or binary, V14 or V15, prefixed or as Metadata_metadata_at_version returns it",
        Required = true,
    };

    public static void Register(RootCommand root)
    {
        var substrate = new Command("substrate", "Offline tools over a runtime's metadata (calls, storage keys, events)");
        substrate.Subcommands.Add(Metadata());
        substrate.Subcommands.Add(StorageKey());
        substrate.Subcommands.Add(Call());
        substrate.Subcommands.Add(Events());
        root.Subcommands.Add(substrate);
    }

    private static RuntimeMetadata Load(FileInfo file)
    {
        if (!file.Exists) throw new CliException($"metadata file {file.FullName} does not exist");
        if (file.Length > RuntimeMetadata.MaxBytes * 2L + 2) throw new CliException($"metadata file {file.FullName} is too large");
        var raw = File.ReadAllBytes(file.FullName);
        var text = System.Text.Encoding.ASCII.GetString(raw).Trim();
        var bytes = text.StartsWith("0x", StringComparison.OrdinalIgnoreCase) && Hex.TryDecode(text, out var h) ? h : raw;
        try
        {
            return RuntimeMetadata.Decode(bytes);
        }
        catch (Exception e) when (e is ScaleException or MetadataException)
        {
            throw new CliException($"{file.Name}: not valid runtime metadata: {e.Message}");
        }
    }

    private static T Guard<T>(Func<T> f)
    {
        try
        {
            return f();
        }
        catch (Exception e) when (e is MetadataException or FormatException or ArgumentException or ScaleException or InvalidCastException)
        {
            throw new CliException(e.Message);
        }
    }

    private static Command Metadata()
    {
        var pallet = new Option<string?>("--pallet") { Description = "Show one pallet's calls, storage, events and errors" };
        var cmd = new Command("metadata", "Summarise runtime metadata: pallets, or one pallet in detail") { MetadataFile, pallet };
        cmd.SetAction(parse =>
        {
            var md = Load(parse.GetValue(MetadataFile)!);
            var json = parse.GetValue(CliApp.Json);
            var output = parse.InvocationConfiguration.Output;
            if (parse.GetValue(pallet) is not { } name)
            {
                var summary = new
                {
                    version = md.Version,
                    types = md.Types.Count,
                    signed_extensions = md.Extrinsic.SignedExtensions.Select(x => x.Identifier).ToArray(),
                    runtime_apis = md.Apis.Select(a => a.Name).ToArray(),
                    pallets = md.Pallets.Select(p => new
                    {
                        name = p.Name, index = p.Index, calls = md.Calls(p).Length, storage = p.Storage.Length,
                        events = md.Events(p).Length, errors = md.Errors(p).Length,
                    }).ToArray(),
                };
                if (json)
                {
                    output.WriteLine(JsonSerializer.Serialize(summary, CliApp.JsonOptions));
                    return 0;
                }
                output.WriteLine($"metadata V{md.Version}: {md.Types.Count} types, {md.Pallets.Length} pallets, {md.Apis.Length} runtime APIs");
                output.WriteLine($"signed extensions: {string.Join(", ", summary.signed_extensions)}");
                foreach (var p in summary.pallets)
                    output.WriteLine($"{p.index,4} {p.name,-28} calls {p.calls,3}  storage {p.storage,3}  events {p.events,3}  errors {p.errors,3}");
                return 0;
            }
            var pm = Guard(() => md.Pallet(name));
            var detail = new
            {
                name = pm.Name,
                index = pm.Index,
                calls = md.Calls(pm).Select(c => new { name = c.Name, index = c.Index, args = MetadataCalls.Signature(md, c) }).ToArray(),
                storage = pm.Storage.Select(s => new
                {
                    name = s.Name,
                    hashers = s.Hashers.Select(h => h.ToString()).ToArray(),
                    key = s.KeyType is { } k ? md.Types.Describe(k) : null,
                    value = md.Types.Describe(s.ValueType),
                    modifier = s.Modifier.ToString(),
                }).ToArray(),
                events = md.Events(pm).Select(e => new { name = e.Name, index = e.Index }).ToArray(),
                errors = md.Errors(pm).Select(e => new { name = e.Name, index = e.Index }).ToArray(),
            };
            if (json)
            {
                output.WriteLine(JsonSerializer.Serialize(detail, CliApp.JsonOptions));
                return 0;
            }
            output.WriteLine($"pallet {pm.Name} (index {pm.Index})");
            foreach (var c in detail.calls) output.WriteLine($"  call  {c.index,3} {c.name}({c.args})");
            foreach (var s in detail.storage)
                output.WriteLine($"  store {s.name}{(s.key is null ? "" : $" [{string.Join(", ", s.hashers)}] {s.key}")} -> {s.value} ({s.modifier})");
            foreach (var e in detail.events) output.WriteLine($"  event {e.index,3} {e.name}");
            foreach (var e in detail.errors) output.WriteLine($"  error {e.index,3} {e.name}");
            return 0;
        });
        return cmd;
    }

    private static Command StorageKey()
    {
        var pallet = new Argument<string>("pallet") { Description = "Pallet name, e.g. System" };
        var item = new Argument<string>("item") { Description = "Storage item, e.g. Account" };
        var keys = new Argument<string[]>("keys") { Description = "Key parts (fewer than the map has gives a prefix)", Arity = ArgumentArity.ZeroOrMore };
        var cmd = new Command("storage-key", "Print the storage key of pallet.item(keys…), hashed as the metadata says") { MetadataFile, pallet, item, keys };
        cmd.SetAction(parse =>
        {
            var md = Load(parse.GetValue(MetadataFile)!);
            var p = parse.GetValue(pallet)!;
            var i = parse.GetValue(item)!;
            var parts = parse.GetValue(keys) ?? [];
            var key = Guard(() =>
            {
                var entry = md.Pallet(p).FindStorage(i) ?? throw new MetadataException($"pallet {p} has no storage item '{i}'");
                var types = entry.Hashers.Length switch
                {
                    0 => [],
                    1 => new[] { entry.KeyType!.Value },
                    _ => md.Types[entry.KeyType!.Value].Def is TupleDef t ? t.Elements.ToArray() : [],
                };
                if (parts.Length > types.Length) throw new ArgumentException($"{p}.{i} takes {types.Length} key part(s), got {parts.Length}");
                return StorageKeys.Key(md, p, i, [.. parts.Select((text, k) => ScaleText.Parse(md.Types, types[k], text))]);
            });
            parse.InvocationConfiguration.Output.WriteLine(Hex.Encode(key));
            return 0;
        });
        return cmd;
    }

    private static Command Call()
    {
        var pallet = new Argument<string>("pallet") { Description = "Pallet name, e.g. SubtensorModule" };
        var call = new Argument<string>("call") { Description = "Call name, e.g. set_weights" };
        var args = new Argument<string[]>("args") { Description = "Arguments as name=value (vectors as a,b,c)", Arity = ArgumentArity.ZeroOrMore };
        var cmd = new Command("call", "Encode pallet.call(name=value …) with the indices and argument types of the metadata") { MetadataFile, pallet, call, args };
        cmd.SetAction(parse =>
        {
            var md = Load(parse.GetValue(MetadataFile)!);
            var p = parse.GetValue(pallet)!;
            var c = parse.GetValue(call)!;
            var bytes = Guard(() =>
            {
                var variant = MetadataCalls.FindCall(md, md.Pallet(p), c);
                var named = (parse.GetValue(args) ?? []).Select(a =>
                {
                    var eq = a.IndexOf('=', StringComparison.Ordinal);
                    if (eq <= 0) throw new FormatException($"argument '{a}' is not name=value");
                    var name = a[..eq];
                    var field = variant.Fields.FirstOrDefault(f => string.Equals(f.Name, name, StringComparison.Ordinal))
                        ?? throw new ArgumentException($"{p}.{c} has no argument '{name}'; it takes {MetadataCalls.Signature(md, variant)}");
                    return (name, ScaleText.Parse(md.Types, field.Type, a[(eq + 1)..]));
                }).ToArray();
                return MetadataCalls.Encode(md, p, c, named);
            });
            parse.InvocationConfiguration.Output.WriteLine(Hex.Encode(bytes));
            return 0;
        });
        return cmd;
    }

    private static Command Events()
    {
        var raw = new Argument<string>("events") { Description = "0x-hex value of System.Events (state_getStorage of its key)" };
        var cmd = new Command("events", "Decode a System.Events value by name, resolving module errors") { MetadataFile, raw };
        cmd.SetAction(parse =>
        {
            var md = Load(parse.GetValue(MetadataFile)!);
            var text = parse.GetValue(raw)!;
            var events = Guard(() =>
            {
                if (!Hex.TryDecode(text, out var bytes)) throw new FormatException("the events value is not hex");
                return MetadataEvents.DecodeEvents(md, bytes);
            });
            var rows = events.Select(e => new
            {
                extrinsic = e.ExtrinsicIndex,
                phase = e.Phase,
                pallet = e.Pallet,
                name = e.Name,
                error = e.Name == "ExtrinsicFailed" && e.Fields.TryField("dispatch_error") is { } d
                    ? MetadataEvents.ResolveDispatchError(md, d).ToString()
                    : null,
            }).ToArray();
            var output = parse.InvocationConfiguration.Output;
            if (parse.GetValue(CliApp.Json))
            {
                output.WriteLine(JsonSerializer.Serialize(rows, CliApp.JsonOptions));
                return 0;
            }
            foreach (var r in rows)
                output.WriteLine($"{(r.extrinsic is { } x ? $"extrinsic {x}" : r.phase),-14} {r.pallet}.{r.name}{(r.error is null ? "" : $" ({r.error})")}");
            return 0;
        });
        return cmd;
    }
}
