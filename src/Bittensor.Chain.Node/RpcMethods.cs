using System.Buffers.Binary;
using System.Globalization;
using System.Reflection;
using System.Text.Json;
using Bittensor.Chain.Local;
using Bittensor.Chain.Substrate;
using Bittensor.Core;
using Bittensor.Core.Domain;
using Bittensor.Core.Scale;

namespace Bittensor.Chain.Node;

/// <summary>The JSON-RPC methods of the localnet node, by name.</summary>
internal sealed class RpcMethods
{
    private delegate ValueTask<Action<Utf8JsonWriter>> Handler(RpcCall call);

    private readonly Localnet _chain;
    private readonly LocalnetNode _node;
    private readonly LocalnetNodeOptions _options;
    private readonly Dictionary<string, Handler> _handlers = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _produce = new(1, 1);
    private static readonly JsonDocumentOptions ParseOptions = new() { MaxDepth = 32 };

    public RpcMethods(Localnet chain, LocalnetNode node, LocalnetNodeOptions options)
    {
        _chain = chain;
        _node = node;
        _options = options;
        var identity = chain.Identity;
        var version = typeof(RpcMethods).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion?.Split('+')[0] ?? "0.0.0";

        // system_*
        Sync("system_chain", _ => w => w.WriteStringValue(identity.Name));
        Sync("system_name", _ => w => w.WriteStringValue("bittensor-actors-localnet"));
        Sync("system_version", _ => w => w.WriteStringValue(version));
        Sync("system_chainType", _ => w => w.WriteStringValue("Development"));
        Sync("system_properties", _ => w =>
        {
            w.WriteStartObject();
            w.WriteNumber("ss58Format", 42);
            w.WriteNumber("tokenDecimals", 9);
            w.WriteString("tokenSymbol", "TAO");
            w.WriteEndObject();
        });
        Sync("system_health", _ => w =>
        {
            w.WriteStartObject();
            w.WriteNumber("peers", 0);
            w.WriteBoolean("isSyncing", false);
            w.WriteBoolean("shouldHavePeers", false);
            w.WriteEndObject();
        });
        Sync("system_peers", _ => w =>
        {
            w.WriteStartArray();
            w.WriteEndArray();
        });
        Add("system_accountNextIndex", AccountNextIndex);
        Add("account_nextIndex", AccountNextIndex);
        Sync("rpc_methods", _ => w =>
        {
            w.WriteStartObject();
            w.WriteNumber("version", 1);
            w.WriteStartArray("methods");
            foreach (var m in _handlers.Keys.Order(StringComparer.Ordinal)) w.WriteStringValue(m);
            w.WriteEndArray();
            w.WriteEndObject();
        });

        // chain_*
        Sync("chain_getBlockHash", GetBlockHash);
        Sync("chain_getHead", _ => w => w.WriteStringValue(Hex.Encode(_node.BestView.BlockHash)));
        Sync("chain_getFinalizedHead", _ => w => w.WriteStringValue(Hex.Encode(_node.BestView.BlockHash)));
        Sync("chain_getFinalisedHead", _ => w => w.WriteStringValue(Hex.Encode(_node.BestView.BlockHash)));
        Sync("chain_getHeader", c =>
        {
            var block = BlockAt(c, 0);
            return w =>
            {
                if (block is null) w.WriteNullValue();
                else RpcJson.Header(w, block);
            };
        });
        Sync("chain_getBlock", c =>
        {
            var block = BlockAt(c, 0);
            return w =>
            {
                if (block?.Extrinsics is null)
                {
                    w.WriteNullValue();
                    return;
                }
                w.WriteStartObject();
                w.WriteStartObject("block");
                w.WritePropertyName("header");
                RpcJson.Header(w, block);
                w.WriteStartArray("extrinsics");
                foreach (var x in block.Extrinsics) w.WriteStringValue(Hex.Encode(x));
                w.WriteEndArray();
                w.WriteEndObject();
                w.WriteNull("justifications");
                w.WriteEndObject();
            };
        });
        HeadSubscription("chain_subscribeNewHeads", "chain_unsubscribeNewHeads", "chain_newHead", SubscriptionKind.NewHeads);
        // Substrate's aliases of the same subscription: polkadot-js' api.rpc.chain.subscribeNewHeads calls the singular one.
        HeadSubscription("chain_subscribeNewHead", "chain_unsubscribeNewHead", "chain_newHead", SubscriptionKind.NewHeads);
        HeadSubscription("subscribe_newHead", "unsubscribe_newHead", "chain_newHead", SubscriptionKind.NewHeads);
        HeadSubscription("chain_subscribeAllHeads", "chain_unsubscribeAllHeads", "chain_allHead", SubscriptionKind.AllHeads);
        HeadSubscription("chain_subscribeFinalizedHeads", "chain_unsubscribeFinalizedHeads", "chain_finalizedHead", SubscriptionKind.FinalizedHeads);
        HeadSubscription("chain_subscribeFinalisedHeads", "chain_unsubscribeFinalisedHeads", "chain_finalizedHead", SubscriptionKind.FinalizedHeads);

        // state_*
        Sync("state_getRuntimeVersion", _ => RuntimeVersion);
        Sync("chain_getRuntimeVersion", _ => RuntimeVersion);
        foreach (var (sub, unsub) in new[] { ("state_subscribeRuntimeVersion", "state_unsubscribeRuntimeVersion"), ("chain_subscribeRuntimeVersion", "chain_unsubscribeRuntimeVersion") })
        {
            Sync(sub, c =>
            {
                var s = c.Connection.Subscribe(SubscriptionKind.RuntimeVersion, "state_runtimeVersion");
                c.Connection.AfterResponse(() => c.Connection.Notify(s, RuntimeVersion));
                return w => w.WriteStringValue(s.Id);
            }, subscription: true);
            Unsubscribe(unsub, SubscriptionKind.RuntimeVersion);
        }
        Sync("state_getMetadata", c =>
        {
            _ = ViewAt(c, 0); // an unknown block is an error, as on a node
            return w => w.WriteStringValue(Hex.Encode(chain.Metadata.V14));
        });
        Sync("state_call", StateCall);
        Sync("state_getStorage", GetStorage);
        Sync("state_getStorageAt", GetStorage);
        Sync("state_getStorageHash", c =>
        {
            var value = ViewAt(c, 1).Get(c.Bytes(0, "key"));
            return w =>
            {
                if (value is null) w.WriteNullValue();
                else w.WriteStringValue(Hex.Encode(Bittensor.Core.Crypto.Blake2b.Hash256(value)));
            };
        });
        Sync("state_getStorageSize", c =>
        {
            var value = ViewAt(c, 1).Get(c.Bytes(0, "key"));
            return w =>
            {
                if (value is null) w.WriteNullValue();
                else w.WriteNumberValue(value.Length);
            };
        });
        Sync("state_queryStorageAt", c =>
        {
            var keys = c.KeyList(0, _options.MaxKeys);
            var view = ViewAt(c, 1);
            var changes = keys.Select(k => (k, view.Get(k))).ToList();
            return w =>
            {
                w.WriteStartArray();
                RpcJson.StorageChangeSet(w, view.BlockHash, changes);
                w.WriteEndArray();
            };
        });
        Sync("state_getKeysPaged", c =>
        {
            var prefix = c.OptBytes(0) ?? [];
            var count = c.Int(1, "count");
            if (count < 0 || count > _options.MaxKeys) throw new RpcException(RpcErrors.InvalidParams, $"count {count} is not in 0..{_options.MaxKeys}");
            var start = c.OptBytes(2) ?? [];
            var keys = ViewAt(c, 3).KeysPaged(prefix, count, start);
            return w =>
            {
                w.WriteStartArray();
                foreach (var k in keys) w.WriteStringValue(Hex.Encode(k));
                w.WriteEndArray();
            };
        });
        Sync("state_subscribeStorage", c =>
        {
            if (c.IsAbsent(0)) throw new RpcException(RpcErrors.InvalidParams, "state_subscribeStorage needs the list of keys (subscribing to every change is not supported)");
            var keys = c.KeyList(0, _options.MaxKeys);
            var s = c.Connection.Subscribe(SubscriptionKind.Storage, "state_storage", keys);
            var view = _node.BestView;
            var initial = keys.Select(k => (k, view.Get(k))).ToList();
            c.Connection.AfterResponse(() => c.Connection.Notify(s, w => RpcJson.StorageChangeSet(w, view.BlockHash, initial)));
            return w => w.WriteStringValue(s.Id);
        }, subscription: true);
        Unsubscribe("state_unsubscribeStorage", SubscriptionKind.Storage);

        // author_*
        Sync("author_submitExtrinsic", c =>
        {
            var submission = Submit(c.Bytes(0, "extrinsic"));
            return w => w.WriteStringValue(Hex.Encode(submission.Hash));
        });
        Sync("author_submitAndWatchExtrinsic", c =>
        {
            var bytes = c.Bytes(0, "extrinsic");
            var connection = c.Connection; // subscription: never null here
            var submission = Submit(bytes);
            var s = connection.Subscribe(SubscriptionKind.Extrinsic, "author_extrinsicUpdate");
            connection.AfterResponse(() =>
            {
                connection.Notify(s, w => w.WriteStringValue(submission.Future ? "future" : "ready"));
                _ = submission.Included!.ContinueWith(t => Included(connection, s, t), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
            });
            return w => w.WriteStringValue(s.Id);
        }, subscription: true);
        Unsubscribe("author_unwatchExtrinsic", SubscriptionKind.Extrinsic);
        Sync("author_pendingExtrinsics", _ =>
        {
            var pending = chain.PendingExtrinsics();
            return w =>
            {
                w.WriteStartArray();
                foreach (var x in pending) w.WriteStringValue(Hex.Encode(x));
                w.WriteEndArray();
            };
        });

        // dev_* (chopsticks' names)
        Add("dev_newBlock", NewBlocksAsync);
        // This node's own: the number of calls ready for the next block, at once and then on every change (Substrate
        // has no pool subscription; a manual-seal client seals when it is above 0 instead of polling
        // author_pendingExtrinsics). Notifications come in the order of the changes; the last one is the current size.
        Sync("dev_subscribePendingExtrinsics", c =>
        {
            var connection = c.Connection;
            var s = connection.Subscribe(SubscriptionKind.Pool, "dev_pendingExtrinsics");
            connection.AfterResponse(() => _node.SendPoolSize(connection, s));
            return w => w.WriteStringValue(s.Id);
        }, subscription: true);
        Unsubscribe("dev_unsubscribePendingExtrinsics", SubscriptionKind.Pool);
    }

    // ---- dispatch ---------------------------------------------------------------------------------------

    private void Add(string name, Handler handler) => _handlers.Add(name, handler);

    private void Sync(string name, Func<RpcCall, Action<Utf8JsonWriter>> handler, bool subscription = false) =>
        _handlers.Add(name, c =>
        {
            if (subscription && c.Connection is null)
                throw new RpcException(RpcErrors.MethodNotFound, $"{name} is a subscription: use the WebSocket endpoint");
            return ValueTask.FromResult(handler(c));
        });

    /// <summary>Test seam: runs on the read loop after a head subscription is made and before its id is answered.</summary>
    internal Action? SubscribedForTests { get; set; }

    private void HeadSubscription(string subscribe, string unsubscribe, string notification, SubscriptionKind kind)
    {
        Sync(subscribe, c =>
        {
            var s = c.Connection.Subscribe(kind, notification);
            var best = _chain.BestBlock;
            SubscribedForTests?.Invoke();
            if (best is not null) c.Connection.AfterResponse(() => c.Connection.Notify(s, w => RpcJson.Header(w, best)));
            return w => w.WriteStringValue(s.Id);
        }, subscription: true);
        Unsubscribe(unsubscribe, kind);
    }

    private void Unsubscribe(string name, SubscriptionKind kind) =>
        Sync(name, c =>
        {
            var id = c.Param(0) is { ValueKind: JsonValueKind.String } e ? e.GetString()! : c.Param(0)?.ToString() ?? "";
            var ok = c.Connection.Unsubscribe(id, kind);
            return w => w.WriteBooleanValue(ok);
        }, subscription: true);

    /// <summary>Handles one WebSocket message or HTTP body; null when nothing is to be answered (only notifications).</summary>
    public async Task<byte[]?> HandleMessageAsync(RpcConnection? connection, byte[] message)
    {
        // JsonDocument does not check the UTF-8 inside strings until one is read (GetString then throws
        // InvalidOperationException, which escaped as a 500 / a dropped connection: found by fuzzing, issue 13 B).
        if (!System.Text.Unicode.Utf8.IsValid(message))
            return RpcJson.Error(null, RpcErrors.ParseError, "Parse error", "the request is not valid UTF-8");
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(message, ParseOptions);
        }
        catch (JsonException e)
        {
            return RpcJson.Error(null, RpcErrors.ParseError, "Parse error", e.Message);
        }
        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind == JsonValueKind.Array)
            {
                var n = root.GetArrayLength();
                if (n == 0) return RpcJson.Error(null, RpcErrors.InvalidRequest, "Invalid request", "empty batch");
                if (n > _options.MaxBatch) return RpcJson.Error(null, RpcErrors.InvalidRequest, "Invalid request", $"a batch may hold at most {_options.MaxBatch} requests");
                var responses = new List<byte[]>(n);
                foreach (var request in root.EnumerateArray())
                    if (await HandleOneAsync(connection, request).ConfigureAwait(false) is { } r) responses.Add(r);
                if (responses.Count == 0) return null;
                var joined = new List<byte>(responses.Sum(r => r.Length + 1) + 2) { (byte)'[' };
                for (var i = 0; i < responses.Count; i++)
                {
                    if (i > 0) joined.Add((byte)',');
                    joined.AddRange(responses[i]);
                }
                joined.Add((byte)']');
                return [.. joined];
            }
            return await HandleOneAsync(connection, root).ConfigureAwait(false);
        }
    }

    private async Task<byte[]?> HandleOneAsync(RpcConnection? connection, JsonElement request)
    {
        if (request.ValueKind != JsonValueKind.Object)
            return RpcJson.Error(null, RpcErrors.InvalidRequest, "Invalid request", "a request is a JSON object");
        JsonElement? id = null;
        var isNotification = true;
        if (request.TryGetProperty("id", out var idElement))
        {
            isNotification = false;
            if (idElement.ValueKind is not (JsonValueKind.Number or JsonValueKind.String or JsonValueKind.Null))
                return RpcJson.Error(null, RpcErrors.InvalidRequest, "Invalid request", "id must be a number, a string or null");
            id = idElement.Clone();
        }
        if (!request.TryGetProperty("method", out var m) || m.ValueKind != JsonValueKind.String)
            return RpcJson.Error(id, RpcErrors.InvalidRequest, "Invalid request", "method must be a string");
        if (request.TryGetProperty("jsonrpc", out var v) && !(v.ValueKind == JsonValueKind.String && v.GetString() == "2.0"))
            return RpcJson.Error(id, RpcErrors.InvalidRequest, "Invalid request", "jsonrpc must be \"2.0\"");
        var method = m.GetString()!;
        JsonElement parameters = default;
        if (request.TryGetProperty("params", out var p))
        {
            if (p.ValueKind is not (JsonValueKind.Array or JsonValueKind.Null))
                return RpcJson.Error(id, RpcErrors.InvalidParams, "Invalid params", "params must be an array");
            parameters = p;
        }
        if (!_handlers.TryGetValue(method, out var handler))
            return isNotification ? null : RpcJson.Error(id, RpcErrors.MethodNotFound, "Method not found", method);
        byte[] response;
        try
        {
            var result = await handler(new RpcCall(connection!, parameters)).ConfigureAwait(false);
            response = RpcJson.Write(w => RpcJson.Result(w, id, result));
        }
        catch (RpcException e)
        {
            response = RpcJson.Error(id, e.Code, e.Message, e.ErrorData);
        }
        catch (ChainUnavailableException e)
        {
            response = RpcJson.Error(id, RpcErrors.Internal, "Internal error", e.Message);
        }
        return isNotification ? null : response;
    }

    // ---- handlers ---------------------------------------------------------------------------------------

    private void RuntimeVersion(Utf8JsonWriter w)
    {
        var id = _chain.Identity;
        w.WriteStartObject();
        w.WriteString("specName", LocalnetMetadata.SpecName);
        w.WriteString("implName", LocalnetMetadata.SpecName);
        w.WriteNumber("authoringVersion", 1);
        w.WriteNumber("specVersion", id.SpecVersion);
        w.WriteNumber("implVersion", 1);
        w.WriteStartArray("apis");
        foreach (var (name, v) in LocalnetMetadata.ApiVersions)
        {
            w.WriteStartArray();
            w.WriteStringValue(Hex.Encode(LocalnetMetadata.ApiId(name)));
            w.WriteNumberValue(v);
            w.WriteEndArray();
        }
        w.WriteEndArray();
        w.WriteNumber("transactionVersion", id.TransactionVersion);
        w.WriteNumber("stateVersion", 1);
        w.WriteEndObject();
    }

    private ValueTask<Action<Utf8JsonWriter>> AccountNextIndex(RpcCall c)
    {
        AccountId account;
        try
        {
            account = AccountId.Parse(c.String(0, "account"));
        }
        catch (FormatException e)
        {
            throw new RpcException(RpcErrors.InvalidParams, "Invalid params", $"not an SS58 address or hex account id: {e.Message}");
        }
        return AwaitNonce(_chain.GetNonceAsync(account));

        static async ValueTask<Action<Utf8JsonWriter>> AwaitNonce(ValueTask<uint> nonce)
        {
            var n = await nonce.ConfigureAwait(false);
            return w => w.WriteNumberValue(n);
        }
    }

    private Action<Utf8JsonWriter> GetBlockHash(RpcCall c)
    {
        var p = c.Param(0);
        if (p is { ValueKind: JsonValueKind.Array } list)
        {
            var hashes = list.EnumerateArray().Select(e => HashOfNumber(BlockNumber(e))).ToList();
            return w =>
            {
                w.WriteStartArray();
                foreach (var h in hashes) WriteHashOrNull(w, h);
                w.WriteEndArray();
            };
        }
        var hash = p is null ? _node.BestView.BlockHash : HashOfNumber(BlockNumber(p.Value));
        return w => WriteHashOrNull(w, hash);
    }

    private byte[]? HashOfNumber(ulong number) => _chain.BlockHashOf(number);

    private static void WriteHashOrNull(Utf8JsonWriter w, byte[]? hash)
    {
        if (hash is null) w.WriteNullValue();
        else w.WriteStringValue(Hex.Encode(hash));
    }

    private static ulong BlockNumber(JsonElement e)
    {
        if (e.ValueKind == JsonValueKind.Number && e.TryGetUInt64(out var n)) return n;
        if (e.ValueKind == JsonValueKind.String)
        {
            var s = e.GetString()!;
            if (s.StartsWith("0x", StringComparison.OrdinalIgnoreCase) && ulong.TryParse(s.AsSpan(2), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out n)) return n;
            if (ulong.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out n)) return n;
        }
        throw new RpcException(RpcErrors.InvalidParams, "Invalid params", $"not a block number: {e.GetRawText()}");
    }

    /// <summary>The block at the hash in parameter <paramref name="index"/> (best when absent); null when unknown.</summary>
    private LocalnetBlock? BlockAt(RpcCall c, int index)
    {
        var hash = c.OptHash(index);
        return hash is null ? _chain.BestBlock : _chain.FindBlock(hash);
    }

    /// <summary>The state at the hash in parameter <paramref name="index"/> (best when absent).</summary>
    private LocalnetStorage ViewAt(RpcCall c, int index)
    {
        var hash = c.OptHash(index);
        if (hash is null) return _node.BestView;
        return _node.ViewAt(hash)
            ?? throw new RpcException(RpcErrors.ClientError,
                _chain.FindBlock(hash) is null ? $"Client error: UnknownBlock: {Hex.Encode(hash)}" : $"State already discarded for {Hex.Encode(hash)} (the node keeps the state of the last {_options.StateHistory} blocks)");
    }

    private Action<Utf8JsonWriter> GetStorage(RpcCall c)
    {
        var key = c.Bytes(0, "key");
        var value = ViewAt(c, 1).Get(key);
        return w =>
        {
            if (value is null) w.WriteNullValue();
            else w.WriteStringValue(Hex.Encode(value));
        };
    }

    private Action<Utf8JsonWriter> StateCall(RpcCall c)
    {
        var method = c.String(0, "method");
        var args = c.OptBytes(1) ?? [];
        var view = ViewAt(c, 2);
        var md = _chain.Metadata;
        byte[] result = method switch
        {
            "Core_version" => md.VersionBytes,
            "Metadata_metadata" => new ScaleWriter(md.V14.Length + 5).Bytes(md.V14).ToArray(),
            "Metadata_metadata_versions" => MetadataVersions(),
            "Metadata_metadata_at_version" => MetadataAt(args),
            "AccountNonceApi_account_nonce" => AccountNonce(view, args),
            "TransactionPaymentApi_query_info" => QueryInfo(args),
            _ => RuntimeApi(view, method, args),
        };
        return w => w.WriteStringValue(Hex.Encode(result));
    }

    private static byte[] RuntimeApi(LocalnetStorage view, string method, byte[] args)
    {
        try
        {
            return LocalnetRuntimeApi.Call(view, method, args)
                ?? throw new RpcException(RpcErrors.ClientError, $"Client error: Execution failed: Other: Exported method {method} is not found");
        }
        catch (ScaleException e)
        {
            throw new RpcException(RpcErrors.ClientError, $"Client error: Execution failed: Codec error: {method} arguments: {e.Message}");
        }
    }

    /// <summary>
    /// <c>TransactionPaymentApi_query_info(uxt, len)</c>: the localnet charges no fees, so the partial fee is 0 and the
    /// weight is 0 (class Normal). The extrinsic must still be a well-formed SCALE extrinsic.
    /// </summary>
    private static byte[] QueryInfo(byte[] args)
    {
        try
        {
            var r = new ScaleReader(args);
            _ = r.Bytes();
            _ = r.U32();
            r.EnsureEnd();
        }
        catch (ScaleException e)
        {
            throw new RpcException(RpcErrors.ClientError, $"Client error: Execution failed: Codec error: TransactionPaymentApi_query_info arguments: {e.Message}");
        }
        return new ScaleWriter(16).Compact(0UL).Compact(0UL).U8(0).U64(0).ToArray();
    }

    private static byte[] MetadataVersions()
    {
        var w = new ScaleWriter(16);
        w.Compact((ulong)LocalnetMetadata.Versions.Length);
        foreach (var v in LocalnetMetadata.Versions) w.U32(v);
        return w.ToArray();
    }

    private byte[] MetadataAt(byte[] args)
    {
        if (args.Length != 4) throw new RpcException(RpcErrors.ClientError, "Client error: Execution failed: Metadata_metadata_at_version takes a u32 version (4 bytes)");
        var version = BinaryPrimitives.ReadUInt32LittleEndian(args);
        return version switch
        {
            14 => MetadataEncoder.WrapOption(_chain.Metadata.V14),
            15 => MetadataEncoder.WrapOption(_chain.Metadata.V15),
            _ => [0],
        };
    }

    private static byte[] AccountNonce(LocalnetStorage view, byte[] args)
    {
        if (args.Length != 32) throw new RpcException(RpcErrors.ClientError, "Client error: Execution failed: AccountNonceApi_account_nonce takes an AccountId32 (32 bytes)");
        var key = StorageKeys.Key(LocalnetMetadataCache.Metadata, "System", "Account", ScaleValue.Bytes(args));
        var nonce = LocalnetStorage.NonceOf(view.Get(key));
        return BitConverter.GetBytes(nonce);
    }

    private LocalnetSubmission Submit(byte[] extrinsic)
    {
        var s = _chain.Submit(extrinsic);
        if (s.Rejected is not { } f) return s;
        throw f.Error switch
        {
            "BadFormat" or "BadCall" => new RpcException(RpcErrors.BadFormat, "Extrinsic has invalid format", f.Message),
            "BadSigner" => new RpcException(RpcErrors.UnknownTransaction, "Unknown Transaction Validity", "Could not lookup information required to validate the transaction"),
            "BadSignature" => new RpcException(RpcErrors.InvalidTransaction, "Invalid Transaction", "Transaction has a bad signature"),
            "AncientBirthBlock" => new RpcException(RpcErrors.InvalidTransaction, "Invalid Transaction", "Transaction has an ancient birth block"),
            "Stale" => new RpcException(RpcErrors.InvalidTransaction, "Invalid Transaction", "Transaction is outdated"),
            "Future" => new RpcException(RpcErrors.InvalidTransaction, "Invalid Transaction", "Transaction will be valid in the future"),
            "Unsigned" => new RpcException(RpcErrors.InvalidTransaction, "Invalid Transaction", "Transaction call is not expected"),
            "Unsupported" => new RpcException(RpcErrors.InvalidTransaction, "Invalid Transaction", f.Message),
            "PriorityTooLow" => new RpcException(RpcErrors.PriorityTooLow, "Priority is too low", f.Message),
            "AlreadyImported" => new RpcException(RpcErrors.AlreadyImported, "Transaction Already Imported", f.Message),
            "PoolFull" => new RpcException(RpcErrors.ImmediatelyDropped, "Immediately Dropped", "The transaction couldn't enter the pool because of the limit"),
            _ => new RpcException(RpcErrors.Internal, "Internal error", $"{f.Error}: {f.Message}"),
        };
    }

    private void Included(RpcConnection connection, Subscription s, Task<CallResult> included)
    {
        var result = included.Result;
        ulong? number = result switch
        {
            CallResult.InBlock b => b.Block,
            CallResult.Failed { Block: { } n } => n,
            _ => null,
        };
        var hash = number is { } k ? _chain.BlockHashOf(k) : null;
        if (hash is null)
        {
            connection.Notify(s, w => w.WriteStringValue("dropped"));
        }
        else
        {
            var h = Hex.Encode(hash);
            connection.Notify(s, w =>
            {
                w.WriteStartObject();
                w.WriteString("inBlock", h);
                w.WriteEndObject();
            });
            // Every block is final at once on the localnet.
            connection.Notify(s, w =>
            {
                w.WriteStartObject();
                w.WriteString("finalized", h);
                w.WriteEndObject();
            });
        }
        connection.Unsubscribe(s.Id, SubscriptionKind.Extrinsic);
    }

    private async ValueTask<Action<Utf8JsonWriter>> NewBlocksAsync(RpcCall c)
    {
        var count = 1;
        if (c.Param(0) is { ValueKind: JsonValueKind.Object } o && o.TryGetProperty("count", out var n))
        {
            if (!n.TryGetInt32(out count) || count < 1 || count > _options.MaxNewBlocks)
                throw new RpcException(RpcErrors.InvalidParams, "Invalid params", $"count must be 1..{_options.MaxNewBlocks}");
        }
        BlockInfo last = null!;
        await _produce.WaitAsync().ConfigureAwait(false);
        try
        {
            for (var i = 0; i < count; i++) last = await _chain.ProduceBlockAsync().ConfigureAwait(false);
        }
        finally
        {
            _produce.Release();
        }
        var hash = Hex.Encode(last.Hash.Span);
        return w => w.WriteStringValue(hash);
    }
}

/// <summary>Metadata used only for key layouts that do not depend on the chain's options.</summary>
internal static class LocalnetMetadataCache
{
    public static RuntimeMetadata Metadata { get; } = LocalnetMetadata.For(new LocalnetOptions()).Metadata;
}

/// <summary>One call's parameters (positional) and its connection (null over HTTP).</summary>
internal sealed class RpcCall(RpcConnection connection, JsonElement parameters)
{
    public RpcConnection Connection { get; } = connection;

    public JsonElement? Param(int i)
    {
        if (parameters.ValueKind != JsonValueKind.Array || i >= parameters.GetArrayLength()) return null;
        var e = parameters[i];
        return e.ValueKind == JsonValueKind.Null ? null : e;
    }

    public bool IsAbsent(int i) => Param(i) is null;

    public string String(int i, string name) =>
        Param(i) is { ValueKind: JsonValueKind.String } e ? e.GetString()! : throw Bad($"{name} (parameter {i}) must be a string");

    public int Int(int i, string name) =>
        Param(i) is { ValueKind: JsonValueKind.Number } e && e.TryGetInt32(out var n) ? n : throw Bad($"{name} (parameter {i}) must be an integer");

    public byte[] Bytes(int i, string name) => OptBytes(i) ?? throw Bad($"{name} (parameter {i}) is missing");

    public byte[]? OptBytes(int i)
    {
        if (Param(i) is not { } e) return null;
        if (e.ValueKind != JsonValueKind.String || !Hex.TryDecode(e.GetString(), out var bytes)) throw Bad($"parameter {i} must be 0x-prefixed hex");
        return bytes;
    }

    public byte[]? OptHash(int i)
    {
        var b = OptBytes(i);
        if (b is not null && b.Length != 32) throw Bad($"parameter {i} must be a 32-byte block hash");
        return b;
    }

    public byte[][] KeyList(int i, int max)
    {
        if (Param(i) is not { ValueKind: JsonValueKind.Array } list) throw Bad($"parameter {i} must be a list of hex keys");
        if (list.GetArrayLength() > max) throw new RpcException(RpcErrors.LimitExceeded, $"at most {max} keys per call");
        return list.EnumerateArray().Select((e, k) => e.ValueKind == JsonValueKind.String && Hex.TryDecode(e.GetString(), out var b) ? b : throw Bad($"key {k} is not hex")).ToArray();
    }

    private static RpcException Bad(string what) => new(RpcErrors.InvalidParams, "Invalid params", what);
}
