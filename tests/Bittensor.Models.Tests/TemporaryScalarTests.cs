using System.Collections.Immutable;
using System.Reflection.Metadata;
using System.Reflection.Metadata.Ecma335;
using System.Reflection.PortableExecutable;

namespace Bittensor.Models.Tests;

/// <summary>
/// TorchSharp 0.107's <c>Scalar</c> has a finalizer and is not tracked by dispose scopes. A Scalar made implicitly
/// (<c>x * 0.5</c>, <c>a + b</c> whose alpha is an implicit 1, <c>full(…, -inf)</c>, its own optimizers' steps) is
/// unreachable once its handle is read, so the GC may free it while native code still reads it: "Unknown scalar type"
/// errors and segfaults in libtorch_cpu.so on busy machines. This test reads our IL and fails on any call that makes
/// one: a call to <c>Scalar</c>'s implicit conversions, or to a TorchSharp method that (directly or through other
/// TorchSharp methods) makes one. Explicit <c>ToScalar()</c> held by a <c>using</c> (or a static field) is allowed.
/// </summary>
public sealed class TemporaryScalarTests
{
    [Fact]
    public void No_TorchSharp_call_in_Bittensor_Models_makes_a_temporary_Scalar()
    {
        var torchSharp = typeof(TorchSharp.torch).Assembly.Location;
        var ours = typeof(Bittensor.Models.Nucleus.ServerTextModel).Assembly.Location;
        var makers = TemporaryScalarMakers(torchSharp);
        // The scan must see TorchSharp's own offenders, or it would pass for the wrong reason.
        Assert.Contains(makers, m => m.StartsWith("TorchSharp.torch+Tensor::op_Addition(TorchSharp.torch+Tensor,TorchSharp.torch+Tensor)", StringComparison.Ordinal));
        Assert.Contains(makers, m => m.StartsWith("TorchSharp.Modules.Adam::step", StringComparison.Ordinal));
        Assert.DoesNotContain(makers, m => m.StartsWith("TorchSharp.torch+Tensor::add(TorchSharp.torch+Tensor,TorchSharp.Scalar)", StringComparison.Ordinal));

        var offenders = new List<string>();
        foreach (var (caller, callees) in Calls(ours))
            foreach (var callee in callees.Distinct())
                if (IsImplicitScalar(callee) || makers.Contains(callee))
                    offenders.Add($"{caller} calls {callee}");
        Assert.True(offenders.Count == 0, "temporary Scalars (make them explicit, held by a using or a static field):\n" + string.Join("\n", offenders));
    }

    private static bool IsImplicitScalar(string callee) => callee.StartsWith("TorchSharp.Scalar::op_Implicit(", StringComparison.Ordinal);

    /// <summary>TorchSharp methods that make a Scalar from a primitive, directly or through other TorchSharp methods.</summary>
    private static HashSet<string> TemporaryScalarMakers(string torchSharp)
    {
        var calls = Calls(torchSharp);
        var makers = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (caller, callees) in calls)
            if (callees.Any(c => IsImplicitScalar(c) || c.StartsWith("TorchSharp.ScalarExtensionMethods::ToScalar(", StringComparison.Ordinal)))
                makers.Add(caller);
        for (var changed = true; changed;)
        {
            changed = false;
            foreach (var (caller, callees) in calls)
                if (!makers.Contains(caller) && callees.Any(makers.Contains))
                    changed = makers.Add(caller) || changed;
        }
        // Overrides are reached through their base method (optim.Optimizer.step → Adam.step).
        foreach (var m in makers.ToArray())
        {
            var at = m.IndexOf("::step(", StringComparison.Ordinal);
            if (m.StartsWith("TorchSharp.Modules.", StringComparison.Ordinal) && at > 0)
                makers.Add("TorchSharp.torch+optim+Optimizer" + m[at..]);
        }
        return makers;
    }

    /// <summary>Every method of the assembly at <paramref name="path"/> with the methods its IL calls, as <c>Type::name(params)</c>.</summary>
    private static Dictionary<string, List<string>> Calls(string path)
    {
        var result = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        using var pe = new PEReader(File.OpenRead(path));
        var md = pe.GetMetadataReader();
        var names = new Names(md);
        foreach (var th in md.TypeDefinitions)
        {
            foreach (var mh in md.GetTypeDefinition(th).GetMethods())
            {
                var method = md.GetMethodDefinition(mh);
                var key = names.Method(mh);
                if (!result.TryGetValue(key, out var list)) result[key] = list = [];
                if (method.RelativeVirtualAddress == 0) continue;
                var il = pe.GetMethodBody(method.RelativeVirtualAddress).GetILReader();
                while (il.RemainingBytes > 0)
                {
                    int op = il.ReadByte();
                    if (op == 0xFE) op = 0xFE00 | il.ReadByte();
                    if (op is 0x28 or 0x6F or 0x73 or 0xFE06 or 0xFE07) // call, callvirt, newobj, ldftn, ldvirtftn
                    {
                        if (names.Callee(MetadataTokens.EntityHandle(il.ReadInt32())) is { } callee) list.Add(callee);
                    }
                    else if (op == 0x45) il.Offset += 4 * il.ReadInt32(); // switch
                    else il.Offset += OperandSize(op);
                }
            }
        }
        return result;
    }

    private static int OperandSize(int op) => op switch
    {
        0x0E or 0x0F or 0x10 or 0x11 or 0x12 or 0x13 or 0x1F or (>= 0x2B and <= 0x37) or 0xDE or 0xFE12 or 0xFE19 => 1,
        0xFE09 or 0xFE0A or 0xFE0B or 0xFE0C or 0xFE0D or 0xFE0E => 2,
        0x21 or 0x23 => 8,
        0x20 or 0x22 or 0x27 or 0x28 or 0x29 or (>= 0x38 and <= 0x44) or (>= 0x6F and <= 0x75) or 0x79 or (>= 0x7B and <= 0x81)
            or 0x8C or 0x8D or 0x8F or 0xA3 or 0xA4 or 0xA5 or 0xC2 or 0xC6 or 0xD0 or 0xDD or 0xFE06 or 0xFE07 or 0xFE15 or 0xFE16 or 0xFE1C => 4,
        _ => 0,
    };

    /// <summary>Names methods the same way whether they are defined here or referenced from another assembly.</summary>
    private sealed class Names(MetadataReader md) : ISignatureTypeProvider<string, object?>
    {
        public string Method(MethodDefinitionHandle h)
        {
            var m = md.GetMethodDefinition(h);
            return $"{Type(m.GetDeclaringType())}::{md.GetString(m.Name)}({string.Join(",", m.DecodeSignature(this, null).ParameterTypes)})";
        }

        public string? Callee(EntityHandle h)
        {
            switch (h.Kind)
            {
                case HandleKind.MethodDefinition:
                    return Method((MethodDefinitionHandle)h);
                case HandleKind.MemberReference:
                    var r = md.GetMemberReference((MemberReferenceHandle)h);
                    if (r.GetKind() != MemberReferenceKind.Method) return null;
                    var parent = r.Parent.Kind switch
                    {
                        HandleKind.TypeReference => GetTypeFromReference(md, (TypeReferenceHandle)r.Parent, 0),
                        HandleKind.TypeDefinition => Type((TypeDefinitionHandle)r.Parent),
                        HandleKind.TypeSpecification => md.GetTypeSpecification((TypeSpecificationHandle)r.Parent).DecodeSignature(this, null),
                        _ => "?",
                    };
                    return $"{parent}::{md.GetString(r.Name)}({string.Join(",", r.DecodeMethodSignature(this, null).ParameterTypes)})";
                case HandleKind.MethodSpecification:
                    return Callee(md.GetMethodSpecification((MethodSpecificationHandle)h).Method);
                default:
                    return null;
            }
        }

        private string Type(TypeDefinitionHandle h) => GetTypeFromDefinition(md, h, 0);

        public string GetTypeFromDefinition(MetadataReader reader, TypeDefinitionHandle handle, byte rawTypeKind)
        {
            var t = reader.GetTypeDefinition(handle);
            var declaring = t.GetDeclaringType();
            return (declaring.IsNil ? reader.GetString(t.Namespace) + "." : GetTypeFromDefinition(reader, declaring, 0) + "+") + reader.GetString(t.Name);
        }

        public string GetTypeFromReference(MetadataReader reader, TypeReferenceHandle handle, byte rawTypeKind)
        {
            var t = reader.GetTypeReference(handle);
            return (t.ResolutionScope.Kind == HandleKind.TypeReference
                ? GetTypeFromReference(reader, (TypeReferenceHandle)t.ResolutionScope, 0) + "+"
                : reader.GetString(t.Namespace) + ".") + reader.GetString(t.Name);
        }

        // A generic instantiation is named by its generic type: Module`2<Tensor,Tensor> and Module`2<!0,!1> are one type here.
        public string GetGenericInstantiation(string genericType, ImmutableArray<string> typeArguments) => genericType;
        public string GetPrimitiveType(PrimitiveTypeCode typeCode) => typeCode.ToString();
        public string GetSZArrayType(string elementType) => elementType + "[]";
        public string GetArrayType(string elementType, ArrayShape shape) => elementType + "[,]";
        public string GetByReferenceType(string elementType) => elementType + "&";
        public string GetPointerType(string elementType) => elementType + "*";
        public string GetPinnedType(string elementType) => elementType;
        public string GetGenericMethodParameter(object? genericContext, int index) => "!!" + index;
        public string GetGenericTypeParameter(object? genericContext, int index) => "!" + index;
        public string GetFunctionPointerType(MethodSignature<string> signature) => "fnptr";
        public string GetModifiedType(string modifier, string unmodifiedType, bool isRequired) => unmodifiedType;
        public string GetTypeFromSpecification(MetadataReader reader, object? genericContext, TypeSpecificationHandle handle, byte rawTypeKind) =>
            reader.GetTypeSpecification(handle).DecodeSignature(this, genericContext);
    }
}
