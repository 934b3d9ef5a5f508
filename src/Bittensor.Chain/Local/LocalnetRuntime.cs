using System.Collections.Immutable;
using Bittensor.Core.Domain;

namespace Bittensor.Chain.Local;

/// <summary>A runtime refusal with subtensor's (or pallet_balances') error name.</summary>
internal sealed class DispatchException(string error, string message) : Exception(message)
{
    public string Error { get; } = error;
}

/// <summary>
/// Applies calls and per-block steps to a <see cref="LocalnetState"/> with subtensor's May-2024 rules
/// (opentensor/subtensor da21fb6a: weights.rs do_set_weights, serving.rs do_serve_axon, registration.rs
/// do_burned_registration, staking.rs do_add_stake/do_remove_stake, root.rs user_add_network, block_step.rs).
/// Every check runs before any state changes, which is what the runtime's transactional dispatch guarantees.
/// </summary>
internal sealed class LocalnetRuntime(LocalnetOptions options, IEpochRunner epochRunner)
{
    private const ushort RootNetuid = 0;

    private static DispatchException Fail(string error, string message) => new(error, message);

    public void Apply(LocalnetState s, AccountId signer, ChainCall call)
    {
        switch (call)
        {
            case SetWeights c: DoSetWeights(s, signer, c); break;
            case ServeAxon c: DoServeAxon(s, signer, c); break;
            case BurnedRegister c: DoBurnedRegister(s, signer, c); break;
            case AddStake c: DoAddStake(s, signer, c); break;
            case RemoveStake c: DoRemoveStake(s, signer, c); break;
            case Transfer c: DoTransfer(s, signer, c); break;
            case RegisterNetwork: DoRegisterNetwork(s, signer); break;
            default: throw Fail("CallFiltered", $"{call.Name} is not supported by the localnet");
        }
    }

    // ---- weights.rs -------------------------------------------------------------------------------------

    private static void DoSetWeights(LocalnetState s, AccountId hotkey, SetWeights c)
    {
        var uids = c.Dests;
        var values = c.Weights;
        if (uids.Length != values.Length)
            throw Fail("WeightVecNotEqualSize", $"{uids.Length} uids but {values.Length} weights");
        if (!s.Subnets.TryGetValue(c.Netuid, out var net))
            throw Fail("NetworkDoesNotExist", $"subnet {c.Netuid} does not exist");
        var n = net.Neurons.Count;
        if (uids.Length > n)
            throw Fail("TooManyUids", $"{uids.Length} uids but the subnet has {n} neurons");
        if (!net.Uids.TryGetValue(hotkey, out var uid))
            throw Fail("NotRegistered", $"hotkey {hotkey.ToHex()} is not registered on subnet {c.Netuid}");
        if (s.TotalHotkeyStake(hotkey) < net.Hyper.WeightsMinStake)
            throw Fail("NotEnoughStakeToSetWeights", "stake is below the weights minimum stake");
        if (net.Hyper.WeightsVersionKey != 0 && c.VersionKey < net.Hyper.WeightsVersionKey)
            throw Fail("IncorrectNetworkVersionKey", $"version_key {c.VersionKey} is below the subnet's {net.Hyper.WeightsVersionKey}");
        var slot = net.Neurons[uid];
        if (slot.LastUpdate != 0 && s.Block - slot.LastUpdate < net.Hyper.WeightsRateLimit)
            throw Fail("SettingWeightsTooFast", $"weights were set at block {slot.LastUpdate}; the rate limit is {net.Hyper.WeightsRateLimit} blocks");
        var selfWeight = values.Length == 1 && uids[0] == uid;
        if (!selfWeight && !slot.ValidatorPermit)
            throw Fail("NoValidatorPermit", $"uid {uid} has no validator permit to set non-self weights");
        if (uids.Distinct().Count() != uids.Length)
            throw Fail("DuplicateUids", "a uid appears twice");
        foreach (var u in uids)
            if (u >= n) throw Fail("InvalidUid", $"uid {u} does not exist on subnet {c.Netuid}");
        var minAllowed = Math.Min(n, (int)net.Hyper.MinAllowedWeights);
        if (!selfWeight && values.Length < minAllowed)
            throw Fail("NotSettingEnoughWeights", $"{values.Length} weights; at least {minAllowed} are required");
        var upscaled = MaxUpscale(values);
        if (!selfWeight && !MaxWeightLimited(upscaled, net.Hyper.MaxWeightsLimit))
            throw Fail("MaxWeightExceeded", $"a normalised weight exceeds the limit {net.Hyper.MaxWeightsLimit}/65535");

        var row = ImmutableArray.CreateBuilder<UidWeight>(uids.Length);
        for (var i = 0; i < uids.Length; i++) row.Add(new UidWeight(uids[i], upscaled[i]));
        slot.Weights = row.MoveToImmutable();
        slot.LastUpdate = s.Block;
    }

    /// <summary>
    /// math.rs vec_max_upscale_to_u16 over I32F32 (32 fractional bits): the largest value becomes 65535, with the
    /// runtime's truncating fixed-point division and round-half-away-from-zero.
    /// </summary>
    internal static ushort[] MaxUpscale(ImmutableArray<ushort> values)
    {
        var result = new ushort[values.Length];
        if (values.Length == 0) return result;
        ulong max = 0;
        foreach (var v in values) max = Math.Max(max, v);
        if (max == 0) return result;
        const ulong half = 1UL << 31;
        for (var i = 0; i < values.Length; i++)
        {
            ulong raw;
            if (max > 32768)
            {
                var q = (65535UL << 32) / max; // u16_max / max, truncated to 32 fractional bits
                raw = values[i] * q;
            }
            else
            {
                raw = ((ulong)values[i] * 65535UL << 32) / max;
            }
            result[i] = (ushort)Math.Min(65535UL, (raw + half) >> 32);
        }
        return result;
    }

    /// <summary>math.rs check_vec_max_limited: after normalising to sum 1, the largest entry is ≤ limit/65535.</summary>
    private static bool MaxWeightLimited(ushort[] weights, ushort limit)
    {
        if (limit == ushort.MaxValue || weights.Length == 0) return true;
        ulong sum = 0, max = 0;
        foreach (var w in weights)
        {
            sum += w;
            max = Math.Max(max, w);
        }
        if (sum == 0) return true;
        return (UInt128)max * 65535 <= (UInt128)limit * sum;
    }

    // ---- serving.rs -------------------------------------------------------------------------------------

    private static void DoServeAxon(LocalnetState s, AccountId hotkey, ServeAxon c)
    {
        if (!s.Subnets.Values.Any(n => n.Uids.ContainsKey(hotkey)))
            throw Fail("NotRegistered", $"hotkey {hotkey.ToHex()} is not registered on any subnet");
        if (c.IpType is not (4 or 6))
            throw Fail("InvalidIpType", $"ip_type {c.IpType} is neither 4 nor 6");
        if (!IsValidIp(c.IpType, c.Ip))
            throw Fail("InvalidIpAddress", $"{AxonInfo.FormatIp(c.Ip, c.IpType)} cannot be served");
        if (!s.Subnets.TryGetValue(c.Netuid, out var net))
            throw Fail("NetworkDoesNotExist", $"subnet {c.Netuid} does not exist");
        var prev = net.Axons.GetValueOrDefault(hotkey) ?? AxonInfo.Empty;
        var rateLimit = net.Hyper.ServingRateLimit;
        if (!(rateLimit == 0 || prev.Block == 0 || s.Block - prev.Block >= rateLimit))
            throw Fail("ServingRateLimitExceeded", $"served at block {prev.Block}; the serving rate limit is {rateLimit} blocks");
        if (c.Port == 0)
            throw Fail("InvalidPort", "port 0 cannot be served");
        net.Axons[hotkey] = new AxonInfo(s.Block, c.Version, c.Ip, c.Port, c.IpType, c.Protocol, c.Placeholder1, c.Placeholder2);
    }

    /// <summary>serving.rs is_valid_ip_address: not 0, IPv4 below 2^32−1 and not 127.0.0.1, IPv6 not all-ones and not ::1.</summary>
    internal static bool IsValidIp(byte ipType, UInt128 ip)
    {
        if (ip == 0) return false;
        if (ipType == 4) return ip < uint.MaxValue && ip != 0x7f000001;
        if (ipType == 6) return ip != UInt128.MaxValue && ip != 1;
        return false;
    }

    // ---- registration.rs / uids.rs ----------------------------------------------------------------------

    private void DoBurnedRegister(LocalnetState s, AccountId coldkey, BurnedRegister c)
    {
        if (c.Netuid == RootNetuid)
            throw Fail("OperationNotPermittedonRootSubnet", "the root subnet takes no burned registrations");
        if (!s.Subnets.TryGetValue(c.Netuid, out var net))
            throw Fail("NetworkDoesNotExist", $"subnet {c.Netuid} does not exist");
        var h = net.Hyper;
        if (!h.RegistrationAllowed)
            throw Fail("RegistrationDisabled", $"registration is closed on subnet {c.Netuid}");
        if (net.RegistrationsThisBlock >= h.MaxRegistrationsPerBlock)
            throw Fail("TooManyRegistrationsThisBlock", $"subnet {c.Netuid} allows {h.MaxRegistrationsPerBlock} registration(s) per block");
        if (net.RegistrationsThisInterval >= h.TargetRegistrationsPerInterval * 3)
            throw Fail("TooManyRegistrationsThisInterval", $"subnet {c.Netuid} allows {h.TargetRegistrationsPerInterval * 3} registrations per {h.AdjustmentInterval}-block interval");
        if (net.Uids.ContainsKey(c.Hotkey))
            throw Fail("AlreadyRegistered", $"hotkey {c.Hotkey.ToHex()} is already registered on subnet {c.Netuid}");
        var burn = h.Burn;
        Withdraw(s, coldkey, burn, "NotEnoughBalanceToStake", "BalanceWithdrawalError", dryRun: true);
        if (s.Owner.TryGetValue(c.Hotkey, out var owner) && owner != coldkey)
            throw Fail("NonAssociatedColdKey", $"hotkey {c.Hotkey.ToHex()} belongs to another coldkey");
        if (h.MaxAllowedUids == 0)
            throw Fail("NetworkDoesNotExist", $"subnet {c.Netuid} allows no uids");

        Withdraw(s, coldkey, burn, "NotEnoughBalanceToStake", "BalanceWithdrawalError", dryRun: false);
        s.TotalIssuance = s.TotalIssuance >= burn ? s.TotalIssuance - burn : 0;
        if (!s.Owner.ContainsKey(c.Hotkey))
        {
            s.Owner[c.Hotkey] = coldkey;
            s.Stake.TryAdd((c.Hotkey, coldkey), 0);
        }

        if (net.Neurons.Count < h.MaxAllowedUids)
        {
            net.Uids[c.Hotkey] = (ushort)net.Neurons.Count;
            net.Neurons.Add(new NeuronSlot { Hotkey = c.Hotkey, LastUpdate = s.Block, BlockAtRegistration = s.Block });
        }
        else
        {
            var uid = NeuronToPrune(s, net);
            var slot = net.Neurons[uid];
            var old = slot.Hotkey;
            net.Uids.Remove(old);
            if (!s.Subnets.Values.Any(x => x.Uids.ContainsKey(old))) UnstakeAll(s, old);
            // uids.rs replace_neuron keeps the slot's vectors; the epoch masks weights set before the new registration.
            slot.Hotkey = c.Hotkey;
            slot.Active = true;
            slot.BlockAtRegistration = s.Block;
            net.Uids[c.Hotkey] = uid;
        }
        net.RegistrationsThisBlock++;
        net.RegistrationsThisInterval++;
    }

    /// <summary>registration.rs get_neuron_to_prune: lowest pruning score outside immunity (the highest such uid on ties, as the runtime's loop does), else the lowest inside it.</summary>
    internal static ushort NeuronToPrune(LocalnetState s, SubnetState net)
    {
        var minScore = ushort.MaxValue;
        var minScoreInImmunity = ushort.MaxValue;
        ushort uidMin = 0, uidMinInImmunity = 0;
        var immunity = (ulong)net.Hyper.ImmunityPeriod;
        for (var i = 0; i < net.Neurons.Count; i++)
        {
            var slot = net.Neurons[i];
            var score = slot.PruningScore;
            var inImmunity = s.Block - slot.BlockAtRegistration < immunity;
            if (minScore == score)
            {
                if (inImmunity)
                {
                    if (minScoreInImmunity > score)
                    {
                        minScoreInImmunity = score;
                        uidMinInImmunity = (ushort)i;
                    }
                }
                else
                {
                    minScore = score;
                    uidMin = (ushort)i;
                }
            }
            else if (minScore > score)
            {
                if (inImmunity)
                {
                    if (minScoreInImmunity > score)
                    {
                        minScoreInImmunity = score;
                        uidMinInImmunity = (ushort)i;
                    }
                }
                else
                {
                    minScore = score;
                    uidMin = (ushort)i;
                }
            }
        }
        var chosen = minScore == ushort.MaxValue ? uidMinInImmunity : uidMin;
        net.Neurons[chosen].PruningScore = ushort.MaxValue;
        return chosen;
    }

    private static void UnstakeAll(LocalnetState s, AccountId hotkey)
    {
        foreach (var key in s.Stake.Keys.Where(k => k.Hotkey == hotkey).ToList())
        {
            var amount = s.Stake[key];
            s.Stake[key] = 0;
            s.Free[key.Coldkey] = checked(s.BalanceOf(key.Coldkey) + amount);
        }
    }

    // ---- staking.rs -------------------------------------------------------------------------------------

    private void DoAddStake(LocalnetState s, AccountId coldkey, AddStake c)
    {
        var amount = c.Amount.Rao;
        if (amount > s.BalanceOf(coldkey))
            throw Fail("NotEnoughBalanceToStake", $"balance {new Balance(s.BalanceOf(coldkey))} is below {c.Amount}");
        if (!s.Owner.TryGetValue(c.Hotkey, out var owner))
            throw Fail("NotRegistered", $"hotkey {c.Hotkey.ToHex()} has never been registered");
        if (owner != coldkey)
            throw Fail("NonAssociatedColdKey", $"hotkey {c.Hotkey.ToHex()} belongs to another coldkey (delegation is not modelled)");
        var count = StakesThisInterval(s, coldkey, c.Hotkey);
        if (count >= options.TargetStakesPerInterval)
            throw Fail("StakeRateLimitExceeded", $"{options.TargetStakesPerInterval} stake operation(s) per {options.StakeInterval} blocks");
        Withdraw(s, coldkey, amount, "NotEnoughBalanceToStake", "BalanceWithdrawalError", dryRun: false);
        s.Stake[(c.Hotkey, coldkey)] = checked(s.Stake.GetValueOrDefault((c.Hotkey, coldkey)) + amount);
        s.StakesThisInterval[(coldkey, c.Hotkey)] = (count + 1, s.Block);
    }

    private void DoRemoveStake(LocalnetState s, AccountId coldkey, RemoveStake c)
    {
        var amount = c.Amount.Rao;
        if (!s.Owner.TryGetValue(c.Hotkey, out var owner))
            throw Fail("NotRegistered", $"hotkey {c.Hotkey.ToHex()} has never been registered");
        if (owner != coldkey)
            throw Fail("NonAssociatedColdKey", $"hotkey {c.Hotkey.ToHex()} belongs to another coldkey");
        var staked = s.Stake.GetValueOrDefault((c.Hotkey, coldkey));
        if (amount == 0 || staked < amount)
            throw Fail("NotEnoughStaketoWithdraw", $"stake {new Balance(staked)} is below {c.Amount}");
        var count = StakesThisInterval(s, coldkey, c.Hotkey);
        if (count >= options.TargetStakesPerInterval)
            throw Fail("UnstakeRateLimitExceeded", $"{options.TargetStakesPerInterval} stake operation(s) per {options.StakeInterval} blocks");
        s.Stake[(c.Hotkey, coldkey)] = staked - amount;
        s.Free[coldkey] = checked(s.BalanceOf(coldkey) + amount);
        s.StakesThisInterval[(coldkey, c.Hotkey)] = (count + 1, s.Block);
    }

    /// <summary>staking.rs get_stakes_this_interval_for_coldkey_hotkey: the counter resets once the interval has passed.</summary>
    private ulong StakesThisInterval(LocalnetState s, AccountId coldkey, AccountId hotkey)
    {
        if (!s.StakesThisInterval.TryGetValue((coldkey, hotkey), out var entry)) return 0;
        return entry.LastBlock + options.StakeInterval <= s.Block ? 0 : entry.Count;
    }

    /// <summary>
    /// Currency::withdraw with KeepAlive: more than the free balance → <paramref name="insufficient"/>; leaving less
    /// than the existential deposit → <paramref name="keepAlive"/>.
    /// </summary>
    private void Withdraw(LocalnetState s, AccountId who, ulong amount, string insufficient, string keepAlive, bool dryRun)
    {
        var free = s.BalanceOf(who);
        if (amount > free)
            throw Fail(insufficient, $"balance {new Balance(free)} is below {new Balance(amount)}");
        if (free - amount < options.ExistentialDeposit && amount > 0)
            throw Fail(keepAlive, $"the account would fall below the existential deposit of {options.ExistentialDeposit} rao");
        if (!dryRun) s.Free[who] = free - amount;
    }

    // ---- pallet_balances transfer_keep_alive ------------------------------------------------------------

    private void DoTransfer(LocalnetState s, AccountId from, Transfer c)
    {
        var value = c.Value.Rao;
        if (value == 0 || from == c.Dest) return;
        if (c.KeepAlive)
        {
            Withdraw(s, from, value, "InsufficientBalance", "KeepAlive", dryRun: true);
        }
        else if (value > s.BalanceOf(from))
        {
            throw Fail("InsufficientBalance", $"balance {new Balance(s.BalanceOf(from))} is below {new Balance(value)}");
        }
        var destBalance = s.BalanceOf(c.Dest);
        if (destBalance + value < options.ExistentialDeposit)
            throw Fail("ExistentialDeposit", $"the destination would hold less than the existential deposit of {options.ExistentialDeposit} rao");
        var rest = s.BalanceOf(from) - value;
        if (!c.KeepAlive && rest < options.ExistentialDeposit)
        {
            // transfer_allow_death: the sender is reaped and its dust is lost (burned).
            s.Free.Remove(from);
            s.TotalIssuance = s.TotalIssuance >= rest ? s.TotalIssuance - rest : 0;
        }
        else
        {
            s.Free[from] = rest;
        }
        s.Free[c.Dest] = checked(destBalance + value);
    }

    // ---- root.rs user_add_network -----------------------------------------------------------------------

    /// <summary>root.rs get_network_lock_cost: twice the last lock, decaying linearly over the reduction interval, floored at the minimum.</summary>
    public ulong NetworkLockCost(LocalnetState s)
    {
        var last = s.NetworkLastLockCost;
        var mult = s.NetworkLastLockBlock == 0 ? 1UL : 2UL;
        var elapsed = s.Block >= s.NetworkLastLockBlock ? s.Block - s.NetworkLastLockBlock : 0;
        var reduction = SaturatingMul(last / options.NetworkLockReductionInterval, elapsed);
        var doubled = SaturatingMul(last, mult);
        var cost = doubled > reduction ? doubled - reduction : 0;
        return Math.Max(cost, options.NetworkMinLockCost);
    }

    private static ulong SaturatingMul(ulong a, ulong b) => b != 0 && a > ulong.MaxValue / b ? ulong.MaxValue : a * b;

    private void DoRegisterNetwork(LocalnetState s, AccountId coldkey)
    {
        var elapsed = s.Block >= s.NetworkLastLockBlock ? s.Block - s.NetworkLastLockBlock : 0;
        if (elapsed < options.NetworkRateLimit)
            throw Fail("TxRateLimitExceeded", $"a subnet was registered at block {s.NetworkLastLockBlock}; the rate limit is {options.NetworkRateLimit} blocks");
        var cost = NetworkLockCost(s);
        if (cost > s.BalanceOf(coldkey))
            throw Fail("NotEnoughBalanceToStake", $"the network lock cost is {new Balance(cost)}; the balance is {new Balance(s.BalanceOf(coldkey))}");
        if (s.Subnets.Count >= options.SubnetLimit)
            throw Fail("AllNetworksInImmunity", $"the localnet holds its limit of {options.SubnetLimit} subnets (pruning subnets is not modelled)");
        Withdraw(s, coldkey, cost, "NotEnoughBalanceToStake", "BalanceWithdrawalError", dryRun: false);
        ushort netuid = 1;
        while (s.Subnets.ContainsKey(netuid)) netuid++;
        s.NetworkLastLockCost = cost;
        s.NetworkLastLockBlock = s.Block;
        s.Subnets[netuid] = new SubnetState
        {
            Netuid = netuid,
            Owner = coldkey,
            RegisteredAt = s.Block,
            LockedRao = cost,
            LastAdjustmentBlock = s.Block,
            Hyper = options.SubnetDefaults,
        };
    }

    // ---- block_step.rs ----------------------------------------------------------------------------------

    /// <summary>
    /// block_step.rs adjust_burn in I110F18 (18 fractional bits): the burn moves toward
    /// burn·(regs + target)/(2·target), keeping <c>adjustment_alpha</c> of the old value, clamped to [min, max].
    /// </summary>
    internal static ulong AdjustBurn(SubnetHyperparameters h, ushort registrations)
    {
        const int frac = 18;
        var target = (UInt128)Math.Max((ushort)1, h.TargetRegistrationsPerInterval);
        var burn = (UInt128)h.Burn;
        var updatedRaw = (burn * (registrations + target) << frac) / (2 * target);
        var alphaRaw = ((UInt128)h.AdjustmentAlpha << frac) / ulong.MaxValue;
        var nextRaw = alphaRaw * burn + ((((UInt128)1 << frac) - alphaRaw) * updatedRaw >> frac);
        if (nextRaw >= (UInt128)h.MaxBurn << frac) return h.MaxBurn;
        if (nextRaw <= (UInt128)h.MinBurn << frac) return h.MinBurn;
        return (ulong)(nextRaw >> frac);
    }

    /// <summary>block_step.rs blocks_until_next_epoch (the pre-2025 rule).</summary>
    public static ulong BlocksUntilNextEpoch(ushort netuid, ushort tempo, ulong block) =>
        tempo == 0 ? 1000 : tempo - (block + netuid + 1) % ((ulong)tempo + 1);

    /// <summary>
    /// The on_initialize step of a new block: registration counters, paying last epoch's emission into stake,
    /// queuing this block's emission (owner cut to the owner's balance) and running epochs that are due.
    /// </summary>
    public void BlockStep(LocalnetState s)
    {
        foreach (var net in s.Subnets.Values)
        {
            net.RegistrationsThisBlock = 0;
            if (s.Block - net.LastAdjustmentBlock >= net.Hyper.AdjustmentInterval)
            {
                // All localnet registrations are burned ones (no PoW), so of adjust_registration_terms_for_networks'
                // branches only two apply: above target the burn rises; with no registrations at all it falls.
                var regs = net.RegistrationsThisInterval;
                var target = net.Hyper.TargetRegistrationsPerInterval;
                if (regs > target || regs == 0) net.Hyper = net.Hyper with { Burn = AdjustBurn(net.Hyper, regs) };
                net.RegistrationsThisInterval = 0;
                net.LastAdjustmentBlock = s.Block;
            }
        }

        // drain_emission: emission computed at the previous epoch goes to the hotkeys' stake (no delegates: owner's stake).
        foreach (var net in s.Subnets.Values)
        {
            foreach (var (hotkey, rao) in net.LoadedEmission)
            {
                if (rao == 0 || !s.Owner.TryGetValue(hotkey, out var owner)) continue;
                s.Stake[(hotkey, owner)] = checked(s.Stake.GetValueOrDefault((hotkey, owner)) + rao);
                s.TotalIssuance = checked(s.TotalIssuance + rao);
            }
            net.LoadedEmission.Clear();
        }

        // generate_emission: the localnet has no root network, so the block emission is split evenly across subnets.
        if (s.Subnets.Count == 0) return;
        var perSubnet = options.BlockEmissionRao / (ulong)s.Subnets.Count;
        foreach (var net in s.Subnets.Values)
        {
            var cut = (ulong)((UInt128)perSubnet * options.SubnetOwnerCut / ushort.MaxValue);
            s.Free[net.Owner] = checked(s.BalanceOf(net.Owner) + cut);
            s.TotalIssuance = checked(s.TotalIssuance + cut);
            net.PendingEmission = checked(net.PendingEmission + perSubnet - cut);
            if (BlocksUntilNextEpoch(net.Netuid, net.Hyper.Tempo, s.Block) != 0) continue;
            var emission = net.PendingEmission;
            net.PendingEmission = 0;
            RunEpoch(s, net, emission);
        }
    }

    private void RunEpoch(LocalnetState s, SubnetState net, ulong emission)
    {
        var n = net.Neurons.Count;
        if (n == 0) return;
        var inputs = new EpochNeuronInput[n];
        var totals = s.HotkeyTotals();
        for (var i = 0; i < n; i++)
        {
            var slot = net.Neurons[i];
            inputs[i] = new EpochNeuronInput((ushort)i, totals.GetValueOrDefault(slot.Hotkey), slot.LastUpdate, slot.BlockAtRegistration,
                slot.Weights, slot.Bonds, slot.ValidatorPermit);
        }
        var result = epochRunner.Run(new EpochRequest(net.Netuid, s.Block, emission, net.Hyper, inputs));
        result.Validate(n);

        ulong maxEmission = 0;
        foreach (var e in result.EmissionRao) maxEmission = Math.Max(maxEmission, e);
        ulong paid = 0;
        for (var i = 0; i < n; i++)
        {
            var slot = net.Neurons[i];
            slot.Rank = result.Rank[i];
            slot.Trust = result.Trust[i];
            slot.Consensus = result.Consensus[i];
            slot.Incentive = result.Incentive[i];
            slot.Dividends = result.Dividends[i];
            slot.ValidatorTrust = result.ValidatorTrust[i];
            slot.ValidatorPermit = result.ValidatorPermit[i];
            slot.Emission = result.EmissionRao[i];
            slot.Bonds = result.Bonds[i];
            slot.Active = slot.LastUpdate + net.Hyper.ActivityCutoff >= s.Block;
            // epoch.rs: pruning score = combined emission max-upscaled to u16.
            slot.PruningScore = result.PruningScores?[i]
                ?? (maxEmission == 0 ? (ushort)0 : (ushort)((UInt128)slot.Emission * 65535 / maxEmission));
            paid = checked(paid + slot.Emission);
        }
        // block_step.rs safety check: an epoch that emits more than it was given is dropped.
        if (paid > emission) return;
        for (var i = 0; i < n; i++) net.LoadedEmission.Add((net.Neurons[i].Hotkey, net.Neurons[i].Emission));
    }
}
