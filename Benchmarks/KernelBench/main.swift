// One-core NF4 block-kernel throughput (absmax + codes + packing, no double quantization), the figure the
// performance issue compares with ggml's Q4_0 quantize_row_q on one core. Run by `scripts/bench --kernel`.
//
//   nf4kit-kernel-bench [--elements N] [--runs R] [--dtype f16|bf16|f32]
//   nf4kit-kernel-bench --merge [--runs R]    the merge's rank-r kernel (native, portable), 2048 x 5632, r = 16
//   nf4kit-kernel-bench --ggml Q4_K[,Q6_K,...|all] [--elements N] [--runs R] [--portable]
// `--ggml` times ggml's reference quantizers (GGMLBlockCodec.quantize, what llama-quantize runs) on the same
// weights rounded to f16 and decoded to f32, as llama-quantize decodes an F16 GGUF before quantizing;
// `--portable` runs the Swift kernels only (the AVX2 k-quant kernel's reference; same checksums).
import Foundation
import NF4KitCore
import NF4KitMerge
import NF4KitQuant

if CommandLine.arguments.dropFirst().first == "--merge" {
    let runs = CommandLine.arguments.count > 3 ? Int(CommandLine.arguments[3]) ?? 10 : 10
    let (rows, columns, rank) = (2048, 5632, 16)
    var seed: UInt32 = 7
    func value() -> Float {
        seed = seed &* 1_664_525 &+ 1_013_904_223
        return Float(Int32(bitPattern: seed) >> 8) / Float(1 << 23) * 0.02
    }
    let left = (0..<(rows * rank)).map { _ in value() }
    let right = (0..<(rank * columns)).map { _ in value() }
    let base = (0..<(rows * columns)).map { _ in value() }
    for (label, native) in [("fused, AVX2 + FMA", true), ("fused, portable f64", false)] {
        var best = Double.infinity
        var out = base
        for _ in 0..<runs {
            out = base
            let start = DispatchTime.now().uptimeNanoseconds
            left.withUnsafeBufferPointer { l in
                right.withUnsafeBufferPointer { r in
                    out.withUnsafeMutableBufferPointer { o in
                        GEMMAccumulate.addScaledProduct(
                            left: l, right: r, rank: rank, columns: columns, scale: 2, weight: 1, into: o,
                            rowRange: 0..<rows, native: native)
                    }
                }
            }
            best = min(best, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
        }
        let checksum = out.reduce(UInt64(0)) { $0 &* 31 &+ UInt64($1.bitPattern) }
        print(
            String(
                format:
                    "merge kernel, 1 core, %@: %d x %d, r %d: best of %d %.4f s = %.2f G multiply-adds/s (checksum %016llx)",
                label, rows, columns, rank, runs, best, Double(rows * columns * rank) / best / 1e9, checksum))
    }
    exit(0)
}

var elements = 16 << 20
var runs = 20
var dtype = DType.f16
var ggmlTypes: [GGMLType] = []
var ggmlKernel = BlockQuantizer.Kernel.automatic
var arguments = CommandLine.arguments.dropFirst().makeIterator()
while let argument = arguments.next() {
    switch argument {
    case "--elements": elements = Int(arguments.next() ?? "") ?? elements
    case "--runs": runs = Int(arguments.next() ?? "") ?? runs
    case "--dtype":
        switch arguments.next() {
        case "bf16": dtype = .bf16
        case "f32": dtype = .f32
        default: dtype = .f16
        }
    case "--portable": ggmlKernel = .portable
    case "--ggml":
        let names = (arguments.next() ?? "").uppercased()
        let all = ["Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "IQ4_NL", "IQ4_XS"]
        ggmlTypes = (names == "ALL" ? all : names.split(separator: ",").map(String.init)).compactMap {
            GGMLType(name: $0)
        }
    default:
        FileHandle.standardError.write(
            ("usage: nf4kit-kernel-bench [--elements N] [--runs R] [--dtype f16|bf16|f32]"
                + " [--ggml TYPE,...|all] [--portable]\n").data(using: .utf8)!)
        exit(64)
    }
}

// Seeded normal weights (SplitMix64 + Box-Muller), scaled like a 4096-wide projection.
var state: UInt64 = 42
@MainActor func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
}
var floats = [Float](repeating: 0, count: elements)
for i in 0..<elements {
    let u1 = max(Double(next() >> 11) / Double(1 << 53), 1e-300)
    let u2 = Double(next() >> 11) / Double(1 << 53)
    floats[i] = Float((-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2) * 0.02)
}
let input: [UInt8] = floats.withUnsafeBytes { raw in
    FloatConversion.convert(raw, from: .f32, to: dtype, count: elements)
}

if !ggmlTypes.isEmpty {
    var values = [Float](repeating: 0, count: elements)
    let halves = floats.withUnsafeBytes { FloatConversion.convert($0, from: .f32, to: .f16, count: elements) }
    halves.withUnsafeBytes { raw in
        values.withUnsafeMutableBufferPointer { FloatConversion.widen(raw, from: .f16, into: $0) }
    }
    let count = elements / 256 * 256
    for type in ggmlTypes {
        var out = [UInt8](repeating: 0, count: count / type.blockSize * type.typeSize)
        var bestTime = Double.infinity
        for _ in 0..<runs {
            let start = DispatchTime.now().uptimeNanoseconds
            values.withUnsafeBufferPointer { source in
                out.withUnsafeMutableBytes {
                    GGMLBlockCodec.quantize(
                        UnsafeBufferPointer(rebasing: source[0..<count]), as: type, into: $0, kernel: ggmlKernel)
                }
            }
            bestTime = min(bestTime, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
        }
        let sum = out.reduce(UInt64(0)) { $0 &* 31 &+ UInt64($1) }
        print(
            String(
                format:
                    "ggml %@ reference quantizer%@, 1 core, %d values: best of %d %.4f s = %.4f G values/s (checksum %016llx)",
                type.name, ggmlKernel == .portable ? " (portable)" : "", count, runs, bestTime,
                Double(count) / bestTime / 1e9, sum))
    }
    exit(0)
}

let quantizer = try BlockQuantizer(quantType: .nf4, blocksize: 64)
let blocks = quantizer.blockCount(elementCount: elements)
var packed = [UInt8](repeating: 0, count: BlockQuantizer.packedByteCount(elementCount: elements))
var absmax = [Float](repeating: 0, count: blocks)
var best = Double.infinity
for _ in 0..<runs {
    let start = DispatchTime.now().uptimeNanoseconds
    input.withUnsafeBytes { raw in
        packed.withUnsafeMutableBytes { out in
            absmax.withUnsafeMutableBufferPointer { a in
                quantizer.quantizeBlocks(
                    0..<blocks, of: raw, dtype: dtype, elementCount: elements, packedInto: out, absmaxInto: a)
            }
        }
    }
    best = min(best, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
}
let checksum = packed.reduce(UInt64(0)) { $0 &* 31 &+ UInt64($1) }
print(
    String(
        format:
            "NF4 kernel, 1 core, %@, %d values, block 64: best of %d %.4f s = %.3f G values/s (native kernel: %@, checksum %016llx)",
        "\(dtype)", elements, runs, best, Double(elements) / best / 1e9,
        BlockQuantizer.nativeKernelAvailable ? "yes" : "no",
        checksum))
