using System.Collections.Immutable;
using Bittensor.Chain.Substrate;
using Bittensor.Core.Crypto;
using Bittensor.Core.Scale;

namespace Bittensor.Chain.Local;

/// <summary>
/// The localnet's own runtime metadata (V14 and V15), generated from the type definitions below: what the localnet
/// node implements, under subtensor's spec-148 names, indices, hashers and keys — System (Account, Number,
/// ParentHash, BlockHash, Events), Timestamp (Now), Balances (<c>transfer_allow_death</c> = call 0,
/// <c>transfer_keep_alive</c> = call 3, TotalIssuance), SubtensorModule (the six calls the localnet applies, the
/// storage items it holds, the events it emits and spec 148's error enum). A client reads this node with the same
/// metadata-driven code as a real subtensor node, and polkadot-js decodes its storage and events.
/// <para>
/// Signed extensions listed (and checked by <see cref="LocalnetExtrinsics"/>): CheckNonZeroSender,
/// CheckSpecVersion, CheckTxVersion, CheckGenesis, CheckMortality, CheckNonce, CheckWeight,
/// ChargeTransactionPayment, CheckMetadataHash — the spec-218 byte layout (explicit: era, nonce, tip, mode;
/// implicit: spec, tx version, genesis, birth-block hash, metadata hash <c>None</c>) that <see cref="SignedCall"/>
/// signs. Spec 148 itself had no CheckMetadataHash; the node keeps the 218 layout so signatures made for the
/// embedded localnet stay valid, and says so in its metadata.
/// </para>
/// </summary>
public sealed class LocalnetMetadata
{
    /// <summary>Pallet index of System.</summary>
    public const byte SystemIndex = 0;

    /// <summary>Pallet index of Timestamp.</summary>
    public const byte TimestampIndex = 2;

    /// <summary>Pallet index of Balances.</summary>
    public const byte BalancesIndex = 5;

    /// <summary>Pallet index of SubtensorModule.</summary>
    public const byte SubtensorIndex = 7;

    /// <summary>Blocks whose hashes the node keeps (System.BlockHash, mortal eras, headers): the constant <c>System.BlockHashCount</c>.</summary>
    public const uint BlockHashCount = 256;

    /// <summary>The metadata versions served (<c>Metadata_metadata_versions</c>).</summary>
    public static readonly ImmutableArray<uint> Versions = [14, 15];

    /// <summary>The spec-148 SubtensorModule error names, in index order (index = position).</summary>
    public static readonly ImmutableArray<string> SubtensorErrors =
    [
        "NetworkDoesNotExist", "NetworkExist", "InvalidModality", "InvalidIpType", "InvalidIpAddress", "InvalidPort",
        "NotRegistered", "NonAssociatedColdKey", "NotEnoughStaketoWithdraw", "NotEnoughStakeToSetWeights",
        "NotEnoughBalanceToStake", "BalanceWithdrawalError", "NoValidatorPermit", "WeightVecNotEqualSize", "DuplicateUids",
        "InvalidUid", "NotSettingEnoughWeights", "TooManyRegistrationsThisBlock", "AlreadyRegistered", "InvalidWorkBlock",
        "InvalidDifficulty", "InvalidSeal", "MaxAllowedUIdsNotAllowed", "CouldNotConvertToBalance", "StakeAlreadyAdded",
        "MaxWeightExceeded", "StorageValueOutOfRange", "TempoHasNotSet", "InvalidTempo", "EmissionValuesDoesNotMatchNetworks",
        "InvalidEmissionValues", "AlreadyDelegate", "SettingWeightsTooFast", "IncorrectNetworkVersionKey",
        "ServingRateLimitExceeded", "BalanceSetError", "MaxAllowedUidsExceeded", "TooManyUids", "TxRateLimitExceeded",
        "StakeRateLimitExceeded", "UnstakeRateLimitExceeded", "RegistrationDisabled", "TooManyRegistrationsThisInterval",
        "BenchmarkingOnly", "HotkeyOriginMismatch", "SenateMember", "NotSenateMember", "AlreadySenateMember",
        "BelowStakeThreshold", "NotDelegate", "IncorrectNetuidsLength", "FaucetDisabled", "NotSubnetOwner",
        "OperationNotPermittedonRootSubnet", "StakeTooLowForRoot", "AllNetworksInImmunity", "NotEnoughBalance",
        "NomStakeBelowMinimumThreshold",
    ];

    /// <summary>The spec-148 Balances error names, in index order.</summary>
    public static readonly ImmutableArray<string> BalancesErrors =
        ["VestingBalance", "LiquidityRestrictions", "InsufficientBalance", "ExistentialDeposit", "KeepAlive", "ExistingVestingSchedule", "DeadAccount", "TooManyReserves"];

    /// <summary>The spec-148 System error names, in index order.</summary>
    public static readonly ImmutableArray<string> SystemErrors =
        ["InvalidSpecName", "SpecVersionNeedsToIncrease", "FailedToExtractRuntimeVersion", "NonDefaultComposite", "NonZeroRefCount", "CallFiltered"];

    /// <summary>The runtime APIs served through <c>state_call</c> with their versions (<c>state_getRuntimeVersion</c>'s <c>apis</c>).</summary>
    public static readonly ImmutableArray<(string Name, uint Version)> ApiVersions =
    [
        ("Core", 4), ("Metadata", 2), ("AccountNonceApi", 1), ("TransactionPaymentApi", 4), ("NeuronInfoRuntimeApi", 1), ("SubnetInfoRuntimeApi", 1),
    ];

    private LocalnetMetadata(LocalnetOptions options)
    {
        var b = new RegistryBuilder();
        var u8 = b.Primitive(PrimitiveKind.U8);
        var u16 = b.Primitive(PrimitiveKind.U16);
        var u32 = b.Primitive(PrimitiveKind.U32);
        var u64 = b.Primitive(PrimitiveKind.U64);
        var u128 = b.Primitive(PrimitiveKind.U128);
        var boolean = b.Primitive(PrimitiveKind.Bool);
        var str = b.Primitive(PrimitiveKind.Str);
        var unit = b.Tuple();
        var bytes = b.Sequence(u8);
        var cu32 = b.Compact(u32);
        var cu64 = b.Compact(u64);
        var u8x32 = b.Array(u8, 32);
        var account = b.Struct("sp_core::crypto::AccountId32", (null, u8x32, "[u8; 32]"));
        var h256 = b.Struct("primitive_types::H256", (null, u8x32, "[u8; 32]"));
        var vecU16 = b.Sequence(u16);
        var vecU64 = b.Sequence(u64);
        var vecBool = b.Sequence(boolean);
        var weightRow = b.Sequence(b.Tuple(u16, u16));

        // ---- extrinsic format -------------------------------------------------------------------------------
        var multiAddress = b.Define("sp_runtime::multiaddress::MultiAddress", new VariantDef(
            [
                V("Id", 0, (null, account, "AccountId")), V("Index", 1, (null, b.Compact(unit), "AccountIndex")),
                V("Raw", 2, (null, bytes, "Vec<u8>")), V("Address32", 3, (null, u8x32, "[u8; 32]")),
                V("Address20", 4, (null, b.Array(u8, 20), "[u8; 20]")),
            ]), new TypeParameter("AccountId", account), new TypeParameter("AccountIndex", unit));
        var ed = b.Struct("sp_core::ed25519::Signature", (null, b.Array(u8, 64), "[u8; 64]"));
        var sr = b.Struct("sp_core::sr25519::Signature", (null, b.Array(u8, 64), "[u8; 64]"));
        var ec = b.Struct("sp_core::ecdsa::Signature", (null, b.Array(u8, 65), "[u8; 65]"));
        var multiSignature = b.Define("sp_runtime::MultiSignature", new VariantDef(
            [V("Ed25519", 0, (null, ed, "ed25519::Signature")), V("Sr25519", 1, (null, sr, "sr25519::Signature")), V("Ecdsa", 2, (null, ec, "ecdsa::Signature"))]));
        var eraVariants = ImmutableArray.CreateBuilder<TypeVariant>(256);
        eraVariants.Add(new TypeVariant("Immortal", 0, [], []));
        for (var i = 1; i < 256; i++) eraVariants.Add(new TypeVariant($"Mortal{i}", (byte)i, [new TypeField(null, u8, null)], []));
        var era = b.Define("sp_runtime::generic::era::Era", new VariantDef(eraVariants.MoveToImmutable()));
        var mode = b.UnitEnum("frame_metadata_hash_extension::Mode", "Disabled", "Enabled");
        var optHash = b.Option(u8x32);
        var extensions = new (string Id, uint Type, uint Implicit)[]
        {
            ("CheckNonZeroSender", b.Struct("frame_system::extensions::check_non_zero_sender::CheckNonZeroSender"), unit),
            ("CheckSpecVersion", b.Struct("frame_system::extensions::check_spec_version::CheckSpecVersion"), u32),
            ("CheckTxVersion", b.Struct("frame_system::extensions::check_tx_version::CheckTxVersion"), u32),
            ("CheckGenesis", b.Struct("frame_system::extensions::check_genesis::CheckGenesis"), h256),
            ("CheckMortality", b.Struct("frame_system::extensions::check_mortality::CheckMortality", (null, era, "Era")), h256),
            ("CheckNonce", b.Struct("frame_system::extensions::check_nonce::CheckNonce", (null, cu32, "T::Nonce")), unit),
            ("CheckWeight", b.Struct("frame_system::extensions::check_weight::CheckWeight"), unit),
            ("ChargeTransactionPayment", b.Struct("pallet_transaction_payment::ChargeTransactionPayment", (null, cu64, "BalanceOf<T>")), unit),
            ("CheckMetadataHash", b.Struct("frame_metadata_hash_extension::CheckMetadataHash", ("mode", mode, "Mode")), optHash),
        };
        var extra = b.Tuple([.. extensions.Select(e => e.Type)]);

        // ---- dispatch results and events ------------------------------------------------------------------
        var weight = b.Struct("sp_weights::weight_v2::Weight", ("ref_time", cu64, "u64"), ("proof_size", cu64, "u64"));
        var dispatchClass = b.UnitEnum("frame_support::dispatch::DispatchClass", "Normal", "Operational", "Mandatory");
        var pays = b.UnitEnum("frame_support::dispatch::Pays", "Yes", "No");
        var dispatchInfo = b.Struct("frame_support::dispatch::DispatchInfo", ("weight", weight, "Weight"), ("class", dispatchClass, "DispatchClass"), ("pays_fee", pays, "Pays"));
        var moduleError = b.Struct("sp_runtime::ModuleError", ("index", u8, "u8"), ("error", b.Array(u8, 4), "[u8; MAX_MODULE_ERROR_ENCODED_SIZE]"));
        var tokenError = b.UnitEnum("sp_runtime::TokenError", "FundsUnavailable", "OnlyProvider", "BelowMinimum", "CannotCreate", "UnknownAsset", "Frozen", "Unsupported", "CannotCreateHold", "NotExpendable", "Blocked");
        var arithmeticError = b.UnitEnum("sp_arithmetic::ArithmeticError", "Underflow", "Overflow", "DivisionByZero");
        var transactionalError = b.UnitEnum("sp_runtime::TransactionalError", "LimitReached", "NoLayer");
        var dispatchError = b.Define("sp_runtime::DispatchError", new VariantDef(
            [
                V("Other", 0), V("CannotLookup", 1), V("BadOrigin", 2), V("Module", 3, (null, moduleError, "ModuleError")),
                V("ConsumerRemaining", 4), V("NoProviders", 5), V("TooManyConsumers", 6), V("Token", 7, (null, tokenError, "TokenError")),
                V("Arithmetic", 8, (null, arithmeticError, "ArithmeticError")), V("Transactional", 9, (null, transactionalError, "TransactionalError")),
                V("Exhausted", 10), V("Corruption", 11), V("Unavailable", 12),
            ]));

        var systemEvent = b.Define("frame_system::pallet::Event", new VariantDef(
            [
                V("ExtrinsicSuccess", 0, ("dispatch_info", dispatchInfo, "DispatchInfo")),
                V("ExtrinsicFailed", 1, ("dispatch_error", dispatchError, "DispatchError"), ("dispatch_info", dispatchInfo, "DispatchInfo")),
                V("NewAccount", 3, ("account", account, "T::AccountId")),
            ]), new TypeParameter("T", null));
        var balancesEvent = b.Define("pallet_balances::pallet::Event", new VariantDef(
            [
                V("Endowed", 0, ("account", account, "T::AccountId"), ("free_balance", u64, "T::Balance")),
                V("Transfer", 2, ("from", account, "T::AccountId"), ("to", account, "T::AccountId"), ("amount", u64, "T::Balance")),
            ]), new TypeParameter("T", null), new TypeParameter("I", null));
        var subtensorEvent = b.Define("pallet_subtensor::pallet::Event", new VariantDef(
            [
                V("NetworkAdded", 0, (null, u16, "u16"), (null, u16, "u16")),
                V("StakeAdded", 2, (null, account, "T::AccountId"), (null, u64, "u64")),
                V("StakeRemoved", 3, (null, account, "T::AccountId"), (null, u64, "u64")),
                V("WeightsSet", 4, (null, u16, "u16"), (null, u16, "u16")),
                V("NeuronRegistered", 5, (null, u16, "u16"), (null, u16, "u16"), (null, account, "T::AccountId")),
                V("AxonServed", 24, (null, u16, "u16"), (null, account, "T::AccountId")),
            ]), new TypeParameter("T", null));

        // ---- calls and errors -------------------------------------------------------------------------------
        var balancesCall = b.Define("pallet_balances::pallet::Call", new VariantDef(
            [
                V("transfer_allow_death", 0, ("dest", multiAddress, "AccountIdLookupOf<T>"), ("value", cu64, "T::Balance")),
                V("transfer_keep_alive", 3, ("dest", multiAddress, "AccountIdLookupOf<T>"), ("value", cu64, "T::Balance")),
            ]), new TypeParameter("T", null), new TypeParameter("I", null));
        var subtensorCall = b.Define("pallet_subtensor::pallet::Call", new VariantDef(
            [
                V("set_weights", 0, ("netuid", u16, "u16"), ("dests", vecU16, "Vec<u16>"), ("weights", vecU16, "Vec<u16>"), ("version_key", u64, "u64")),
                V("add_stake", 2, ("hotkey", account, "T::AccountId"), ("amount_staked", u64, "u64")),
                V("remove_stake", 3, ("hotkey", account, "T::AccountId"), ("amount_unstaked", u64, "u64")),
                V("serve_axon", 4, ("netuid", u16, "u16"), ("version", u32, "u32"), ("ip", u128, "u128"), ("port", u16, "u16"),
                    ("ip_type", u8, "u8"), ("protocol", u8, "u8"), ("placeholder1", u8, "u8"), ("placeholder2", u8, "u8")),
                V("burned_register", 7, ("netuid", u16, "u16"), ("hotkey", account, "T::AccountId")),
                V("register_network", 59),
            ]), new TypeParameter("T", null));
        uint Errors(string path, ImmutableArray<string> names) =>
            b.Define(path, new VariantDef([.. names.Select((n, i) => new TypeVariant(n, (byte)i, [], []))]), new TypeParameter("T", null));
        var systemError = Errors("frame_system::pallet::Error", SystemErrors);
        var balancesError = Errors("pallet_balances::pallet::Error", BalancesErrors);
        var subtensorError = Errors("pallet_subtensor::pallet::Error", SubtensorErrors);

        var runtimeCall = b.Define("node_subtensor_runtime::RuntimeCall", new VariantDef(
            [V("Balances", BalancesIndex, (null, balancesCall, "self::sp_api_hidden_includes_construct_runtime::hidden_include::dispatch::CallableCallFor<Balances, Runtime>")),
             V("SubtensorModule", SubtensorIndex, (null, subtensorCall, "self::sp_api_hidden_includes_construct_runtime::hidden_include::dispatch::CallableCallFor<SubtensorModule, Runtime>"))]));
        var runtimeEvent = b.Define("node_subtensor_runtime::RuntimeEvent", new VariantDef(
            [V("System", SystemIndex, (null, systemEvent, "frame_system::Event<Runtime>")), V("Balances", BalancesIndex, (null, balancesEvent, "pallet_balances::Event<Runtime>")),
             V("SubtensorModule", SubtensorIndex, (null, subtensorEvent, "pallet_subtensor::Event<Runtime>"))]));
        var runtimeError = b.Define("node_subtensor_runtime::RuntimeError", new VariantDef(
            [V("System", SystemIndex, (null, systemError, "frame_system::Error<Runtime>")), V("Balances", BalancesIndex, (null, balancesError, "pallet_balances::Error<Runtime>")),
             V("SubtensorModule", SubtensorIndex, (null, subtensorError, "pallet_subtensor::Error<Runtime>"))]));
        var uncheckedExtrinsic = b.Define("sp_runtime::generic::unchecked_extrinsic::UncheckedExtrinsic", new CompositeDef([new TypeField(null, bytes, null)]),
            new TypeParameter("Address", multiAddress), new TypeParameter("Call", runtimeCall),
            new TypeParameter("Signature", multiSignature), new TypeParameter("Extra", extra));
        var runtime = b.Struct("node_subtensor_runtime::Runtime");

        // ---- storage values ---------------------------------------------------------------------------------
        // Spec 148's balances: AccountData {free, reserved, misc_frozen, fee_frozen} (48-byte AccountInfo).
        var accountData = b.Define("pallet_balances::AccountData", new CompositeDef(
            [F("free", u64, "Balance"), F("reserved", u64, "Balance"), F("misc_frozen", u64, "Balance"), F("fee_frozen", u64, "Balance")]),
            new TypeParameter("Balance", u64));
        AccountInfoType = b.Define("frame_system::AccountInfo", new CompositeDef(
            [F("nonce", u32, "Index"), F("consumers", u32, "RefCount"), F("providers", u32, "RefCount"), F("sufficients", u32, "RefCount"), F("data", accountData, "AccountData")]),
            new TypeParameter("Index", u32), new TypeParameter("AccountData", accountData));
        var phase = b.Define("frame_system::Phase", new VariantDef([V("ApplyExtrinsic", 0, (null, u32, "u32")), V("Finalization", 1), V("Initialization", 2)]));
        var eventRecord = b.Define("frame_system::EventRecord", new CompositeDef(
            [F("phase", phase, "Phase"), F("event", runtimeEvent, "E"), F("topics", b.Sequence(h256), "Vec<T>")]),
            new TypeParameter("E", runtimeEvent), new TypeParameter("T", h256));
        EventsType = b.Sequence(eventRecord);
        var axon = b.Struct("pallet_subtensor::pallet::AxonInfo",
            ("block", u64, "u64"), ("version", u32, "u32"), ("ip", u128, "u128"), ("port", u16, "u16"), ("ip_type", u8, "u8"),
            ("protocol", u8, "u8"), ("placeholder1", u8, "u8"), ("placeholder2", u8, "u8"));
        var loaded = b.Sequence(b.Tuple(account, u64, u64));
        var netuidAccount = b.Tuple(u16, account);
        var accountNetuid = b.Tuple(account, u16);
        var netuidUid = b.Tuple(u16, u16);
        var accountAccount = b.Tuple(account, account);
        var versionType = b.Struct("sp_version::RuntimeVersion",
            ("spec_name", str, "RuntimeString"), ("impl_name", str, "RuntimeString"), ("authoring_version", u32, "u32"),
            ("spec_version", u32, "u32"), ("impl_version", u32, "u32"), ("apis", b.Sequence(b.Tuple(b.Array(u8, 8), u32)), "ApisVec"),
            ("transaction_version", u32, "u32"), ("state_version", u8, "u8"));
        var optBytes = b.Option(bytes);
        var dispatchInfoV2 = b.Define("pallet_transaction_payment::types::RuntimeDispatchInfo", new CompositeDef(
            [F("weight", weight, "Weight"), F("class", dispatchClass, "DispatchClass"), F("partial_fee", u64, "Balance")]),
            new TypeParameter("Balance", u64), new TypeParameter("Weight", weight));
        var vecU32 = b.Sequence(u32);

        static StorageEntryMetadata Plain(string name, uint value, byte[] def) =>
            new(name, StorageModifier.Default, [], null, value, [.. def]);
        static StorageEntryMetadata Map(string name, StorageModifier modifier, StorageHasher[] hashers, uint key, uint value, byte[] def) =>
            new(name, modifier, [.. hashers], key, value, [.. def]);
        byte[] Zero(int n) => new byte[n];
        var id = StorageHasher.Identity;
        var b128 = StorageHasher.Blake2_128Concat;
        var defaultAccount = new byte[16 + 32];
        byte[] U16(ushort v) => [(byte)v, (byte)(v >> 8)];
        byte[] U64(ulong v) => BitConverter.GetBytes(v);

        var system = new PalletMetadata("System", SystemIndex, "System",
            [
                Map("Account", StorageModifier.Default, [b128], account, AccountInfoType, defaultAccount),
                Map("BlockHash", StorageModifier.Default, [StorageHasher.Twox64Concat], u32, h256, Zero(32)),
                Plain("Number", u32, Zero(4)),
                Plain("ParentHash", h256, Zero(32)),
                Plain("Events", EventsType, [0]),
                Plain("EventCount", u32, Zero(4)),
            ],
            null, systemEvent, systemError,
            [
                new ConstantMetadata("BlockHashCount", u32, [.. BitConverter.GetBytes(BlockHashCount)]),
                new ConstantMetadata("Version", versionType, [.. EncodeVersion(options)]),
                new ConstantMetadata("SS58Prefix", u16, [42, 0]),
            ]);
        var timestamp = new PalletMetadata("Timestamp", TimestampIndex, "Timestamp", [Plain("Now", u64, Zero(8))], null, null, null,
            [new ConstantMetadata("MinimumPeriod", u64, [.. U64(6000)])]);
        var balances = new PalletMetadata("Balances", BalancesIndex, "Balances", [Plain("TotalIssuance", u64, Zero(8))],
            balancesCall, balancesEvent, balancesError,
            [new ConstantMetadata("ExistentialDeposit", u64, [.. U64(options.ExistentialDeposit)])]);
        var d = SubnetHyperparametersDefaults(options);
        var subtensor = new PalletMetadata("SubtensorModule", SubtensorIndex, "SubtensorModule",
            [
                Plain("TotalStake", u64, Zero(8)),
                Plain("BlockEmission", u64, U64(1_000_000_000)),
                Plain("TotalIssuance", u64, Zero(8)),
                Plain("TargetStakesPerInterval", u64, Zero(8)),
                Plain("StakeInterval", u64, U64(360)),
                Map("TotalHotkeyStake", StorageModifier.Default, [id], account, u64, Zero(8)),
                Map("TotalColdkeyStake", StorageModifier.Default, [id], account, u64, Zero(8)),
                Map("Owner", StorageModifier.Default, [b128], account, account, Zero(32)),
                Map("Stake", StorageModifier.Default, [b128, id], accountAccount, u64, Zero(8)),
                Map("Burn", StorageModifier.Default, [id], u16, u64, U64(d.Burn)),
                Map("MinBurn", StorageModifier.Default, [id], u16, u64, U64(d.MinBurn)),
                Map("MaxBurn", StorageModifier.Default, [id], u16, u64, U64(d.MaxBurn)),
                Map("LastAdjustmentBlock", StorageModifier.Default, [id], u16, u64, Zero(8)),
                Map("RegistrationsThisBlock", StorageModifier.Default, [id], u16, u16, Zero(2)),
                Map("MaxRegistrationsPerBlock", StorageModifier.Default, [id], u16, u16, U16(d.MaxRegistrationsPerBlock)),
                Plain("SubnetLimit", u16, U16(options.SubnetLimit)),
                Plain("TotalNetworks", u16, Zero(2)),
                Map("SubnetworkN", StorageModifier.Default, [id], u16, u16, Zero(2)),
                Map("NetworksAdded", StorageModifier.Default, [id], u16, boolean, Zero(1)),
                Map("IsNetworkMember", StorageModifier.Default, [b128, id], accountNetuid, boolean, Zero(1)),
                Map("NetworkRegistrationAllowed", StorageModifier.Default, [id], u16, boolean, Zero(1)),
                Map("NetworkRegisteredAt", StorageModifier.Default, [id], u16, u64, Zero(8)),
                Plain("NetworkMinLockCost", u64, U64(options.NetworkMinLockCost)),
                Plain("NetworkLastLockCost", u64, Zero(8)),
                Plain("NetworkLockReductionInterval", u64, U64(options.NetworkLockReductionInterval)),
                Plain("SubnetOwnerCut", u16, U16(options.SubnetOwnerCut)),
                Plain("NetworkRateLimit", u64, U64(options.NetworkRateLimit)),
                Map("Tempo", StorageModifier.Default, [id], u16, u16, U16(d.Tempo)),
                Map("EmissionValues", StorageModifier.Default, [id], u16, u64, Zero(8)),
                Map("PendingEmission", StorageModifier.Default, [id], u16, u64, Zero(8)),
                Map("SubnetOwner", StorageModifier.Default, [id], u16, account, Zero(32)),
                Map("SubnetLocked", StorageModifier.Default, [id], u16, u64, Zero(8)),
                Map("ServingRateLimit", StorageModifier.Default, [id], u16, u64, U64(d.ServingRateLimit)),
                Map("Axons", StorageModifier.Optional, [id, b128], netuidAccount, axon, []),
                Map("Kappa", StorageModifier.Default, [id], u16, u16, U16(d.Kappa)),
                Map("RegistrationsThisInterval", StorageModifier.Default, [id], u16, u16, Zero(2)),
                Map("BurnRegistrationsThisInterval", StorageModifier.Default, [id], u16, u16, Zero(2)),
                Map("MaxAllowedUids", StorageModifier.Default, [id], u16, u16, U16(d.MaxAllowedUids)),
                Map("ImmunityPeriod", StorageModifier.Default, [id], u16, u16, U16(d.ImmunityPeriod)),
                Map("ActivityCutoff", StorageModifier.Default, [id], u16, u16, U16(d.ActivityCutoff)),
                Map("MaxWeightsLimit", StorageModifier.Default, [id], u16, u16, U16(d.MaxWeightsLimit)),
                Map("WeightsVersionKey", StorageModifier.Default, [id], u16, u64, U64(d.WeightsVersionKey)),
                Map("MinAllowedWeights", StorageModifier.Default, [id], u16, u16, U16(d.MinAllowedWeights)),
                Map("MaxAllowedValidators", StorageModifier.Default, [id], u16, u16, U16(d.MaxAllowedValidators)),
                Map("AdjustmentInterval", StorageModifier.Default, [id], u16, u16, U16(d.AdjustmentInterval)),
                Map("BondsMovingAverage", StorageModifier.Default, [id], u16, u64, U64(d.BondsMovingAverage)),
                Map("WeightsSetRateLimit", StorageModifier.Default, [id], u16, u64, U64(d.WeightsRateLimit)),
                Map("TargetRegistrationsPerInterval", StorageModifier.Default, [id], u16, u16, U16(d.TargetRegistrationsPerInterval)),
                Map("BlockAtRegistration", StorageModifier.Default, [id, id], netuidUid, u64, Zero(8)),
                Map("AdjustmentAlpha", StorageModifier.Default, [id], u16, u64, U64(d.AdjustmentAlpha)),
                Map("Uids", StorageModifier.Optional, [id, b128], netuidAccount, u16, []),
                Map("Keys", StorageModifier.Default, [id, id], netuidUid, account, Zero(32)),
                Map("LoadedEmission", StorageModifier.Optional, [id], u16, loaded, []),
                Map("Active", StorageModifier.Default, [id], u16, vecBool, [0]),
                Map("Rank", StorageModifier.Default, [id], u16, vecU16, [0]),
                Map("Trust", StorageModifier.Default, [id], u16, vecU16, [0]),
                Map("Consensus", StorageModifier.Default, [id], u16, vecU16, [0]),
                Map("Incentive", StorageModifier.Default, [id], u16, vecU16, [0]),
                Map("Dividends", StorageModifier.Default, [id], u16, vecU16, [0]),
                Map("Emission", StorageModifier.Default, [id], u16, vecU64, [0]),
                Map("LastUpdate", StorageModifier.Default, [id], u16, vecU64, [0]),
                Map("ValidatorTrust", StorageModifier.Default, [id], u16, vecU16, [0]),
                Map("PruningScores", StorageModifier.Default, [id], u16, vecU16, [0]),
                Map("ValidatorPermit", StorageModifier.Default, [id], u16, vecBool, [0]),
                Map("Weights", StorageModifier.Default, [id, id], netuidUid, weightRow, [0]),
                Map("Bonds", StorageModifier.Default, [id, id], netuidUid, weightRow, [0]),
            ],
            subtensorCall, subtensorEvent, subtensorError, []);

        // ---- runtime APIs (V15) ----------------------------------------------------------------------------
        static RuntimeApiMethod M(string name, uint output, params (string Name, uint Type)[] inputs) =>
            new(name, [.. inputs.Select(i => new RuntimeApiParam(i.Name, i.Type))], output);
        var apis = ImmutableArray.Create(
            new RuntimeApiMetadata("Core", [M("version", versionType)]),
            new RuntimeApiMetadata("Metadata", [M("metadata", bytes), M("metadata_at_version", optBytes, ("version", u32)), M("metadata_versions", vecU32)]),
            new RuntimeApiMetadata("AccountNonceApi", [M("account_nonce", u32, ("account", account))]),
            new RuntimeApiMetadata("TransactionPaymentApi", [M("query_info", dispatchInfoV2, ("uxt", bytes), ("len", u32))]),
            new RuntimeApiMetadata("NeuronInfoRuntimeApi",
            [
                M("get_neurons", bytes, ("netuid", u16)), M("get_neuron", bytes, ("netuid", u16), ("uid", u16)),
                M("get_neurons_lite", bytes, ("netuid", u16)), M("get_neuron_lite", bytes, ("netuid", u16), ("uid", u16)),
            ]),
            new RuntimeApiMetadata("SubnetInfoRuntimeApi", [M("get_subnet_info", bytes, ("netuid", u16)), M("get_subnets_info", bytes)]));

        Registry = b.Build();
        Description = new MetadataDescription(
            Registry,
            [system, timestamp, balances, subtensor],
            new ExtrinsicMetadata(4, uncheckedExtrinsic, multiAddress, runtimeCall, multiSignature,
                [.. extensions.Select(e => new SignedExtensionMetadata(e.Id, e.Type, e.Implicit))]),
            extra,
            runtime,
            apis,
            runtimeEvent,
            runtimeError);
        V14 = MetadataEncoder.EncodeV14(Description);
        V15 = MetadataEncoder.EncodeV15(Description);
        // Our own decoder reads what we serve (a node that describes itself wrongly fails here, at start).
        Metadata = RuntimeMetadata.Decode(V14);
        MetadataV15 = RuntimeMetadata.Decode(V15);
        VersionBytes = EncodeVersion(options);
    }

    private static TypeVariant V(string name, byte index, params (string? Name, uint Type, string? TypeName)[] fields) =>
        new(name, index, [.. fields.Select(f => new TypeField(f.Name, f.Type, f.TypeName))], []);

    private static TypeField F(string name, uint type, string typeName) => new(name, type, typeName);

    private static Bittensor.Core.Domain.SubnetHyperparameters SubnetHyperparametersDefaults(LocalnetOptions options) => options.SubnetDefaults;

    /// <summary>The metadata of a localnet created with <paramref name="options"/> (its constants follow the options).</summary>
    public static LocalnetMetadata For(LocalnetOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        return new LocalnetMetadata(options);
    }

    /// <summary>The type registry.</summary>
    public PortableRegistry Registry { get; }

    /// <summary>What was encoded.</summary>
    public MetadataDescription Description { get; }

    /// <summary><c>meta</c> + V14 (<c>state_getMetadata</c>).</summary>
    public byte[] V14 { get; }

    /// <summary><c>meta</c> + V15 (<c>Metadata_metadata_at_version(15)</c>, unwrapped).</summary>
    public byte[] V15 { get; }

    /// <summary><see cref="V14"/> decoded by our own decoder.</summary>
    public RuntimeMetadata Metadata { get; }

    /// <summary><see cref="V15"/> decoded by our own decoder.</summary>
    public RuntimeMetadata MetadataV15 { get; }

    /// <summary><c>frame_system::AccountInfo</c>.</summary>
    public uint AccountInfoType { get; }

    /// <summary><c>Vec&lt;EventRecord&gt;</c> (System.Events).</summary>
    public uint EventsType { get; }

    /// <summary>SCALE <c>RuntimeVersion</c> (<c>Core_version</c>, constant <c>System.Version</c>).</summary>
    public byte[] VersionBytes { get; }

    /// <summary>A runtime API's id: BLAKE2b-64 of the trait name, as <c>sp_api</c> derives it.</summary>
    public static byte[] ApiId(string name)
    {
        var id = new byte[8];
        Blake2b.Hash(System.Text.Encoding.UTF8.GetBytes(name), id);
        return id;
    }

    private static byte[] EncodeVersion(LocalnetOptions options)
    {
        var w = new ScaleWriter(256);
        w.String(SpecName).String(SpecName).U32(1).U32(options.SpecVersion).U32(1);
        w.Compact((ulong)ApiVersions.Length);
        foreach (var (name, version) in ApiVersions) w.Raw(ApiId(name)).U32(version);
        w.U32(options.TransactionVersion).U8(1);
        return w.ToArray();
    }

    /// <summary>The runtime's spec and impl name.</summary>
    public const string SpecName = "node-subtensor";
}
