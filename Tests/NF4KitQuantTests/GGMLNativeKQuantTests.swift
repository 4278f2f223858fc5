import NF4KitCore
@testable import NF4KitQuant
import Testing

/// The AVX2 k-quant kernel (Q4_K, Q5_K, Q6_K; CNF4Kernels/kquants.c) against the Swift reference port
/// (`kernel: .portable`), which the golden-file tests tie to llama-quantize's bytes. Both run on the same values;
/// every byte must match.
@Suite struct GGMLNativeKQuantTests {
    static let types: [GGMLType] = [.q4_K, .q5_K, .q6_K]

    /// Seeded, roughly normal values: SplitMix64, the sum of four uniforms (mean 0, variance 1).
    struct Normal {
        var state: UInt64
        mutating func next() -> Float {
            func bits() -> UInt64 {
                state &+= 0x9E37_79B9_7F4A_7C15
                var z = state
                z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
                z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
                return z ^ (z >> 31)
            }
            var sum = 0.0
            for _ in 0..<4 { sum += Double(bits() >> 11) / Double(1 << 53) }
            return Float((sum - 2) * 3.0.squareRoot())
        }
    }

    static func compare(_ x: [Float], _ type: GGMLType, _ label: String) {
        let byteCount = x.count / 256 * type.typeSize
        var native = [UInt8](repeating: 0xA5, count: byteCount)
        var portable = [UInt8](repeating: 0x5A, count: byteCount)
        x.withUnsafeBufferPointer { source in
            native.withUnsafeMutableBytes { GGMLBlockCodec.quantize(source, as: type, into: $0, kernel: .automatic) }
            portable.withUnsafeMutableBytes { GGMLBlockCodec.quantize(source, as: type, into: $0, kernel: .portable) }
        }
        let first = zip(native, portable).enumerated().first { $0.element.0 != $0.element.1 }?.offset
        #expect(first == nil, "\(type.name) \(label): first difference in block \((first ?? 0) / type.typeSize)")
    }

    @Test func `the native kernel runs on this machine`() {
        #if arch(x86_64)
        #expect(QuantizeKernel.hasNativeKernel, "this x86-64 CPU has no AVX2 + F16C: the native k-quants are untested")
        #endif
    }

    @Test(arguments: types)
    func `weights like a model's, rounded to f16`(type: GGMLType) {
        var normal = Normal(state: 7)
        // 301 super-blocks: an odd count, so the last one runs without a partner; a few scales per row.
        let x = (0..<(301 * 256)).map { i in Float(Float16(normal.next() * (i < 150 * 256 ? 0.02 : 0.2))) }
        Self.compare(x, type, "normal")
    }

    @Test(arguments: types)
    func `edge cases: zeros, constants, one sign, huge, tiny, mixed groups`(type: GGMLType) {
        var normal = Normal(state: 11)
        var blocks: [[Float]] = []
        blocks.append([Float](repeating: 0, count: 256))
        blocks.append([Float](repeating: -0.0, count: 256))
        blocks.append([Float](repeating: 0.5, count: 256))
        blocks.append([Float](repeating: -0.25, count: 256))
        blocks.append((0..<256).map { _ in -abs(normal.next()) })  // negative only
        blocks.append((0..<256).map { _ in abs(normal.next()) + 3 })  // positive, far from zero
        blocks.append((0..<256).map { _ in normal.next() * 1e9 })
        blocks.append((0..<256).map { _ in normal.next() * 4e9 })  // near the kernel's 2^32 bound
        blocks.append((0..<256).map { _ in normal.next() * 1e-30 })
        blocks.append((0..<256).map { _ in normal.next() * Float.leastNormalMagnitude / 1024 })  // subnormal
        blocks.append((0..<256).map { _ in normal.next() * 1e-15 })  // around ggml's GROUP_MAX_EPS
        // One large group among small ones: the small groups' 6-bit scales round to 0 and keep the fit's codes.
        blocks.append((0..<256).map { i in normal.next() * (i / 32 == 3 ? 100 : 1e-3) })
        blocks.append((0..<256).map { i in normal.next() * (i / 16 == 9 ? 100 : 1e-4) })
        // Constant groups (32 and 16 wide) inside random blocks.
        blocks.append((0..<256).map { i in i / 32 == 5 ? -1.5 : normal.next() })
        blocks.append((0..<256).map { i in i / 16 == 2 ? 0 : normal.next() })
        blocks.append((0..<256).map { i in i % 7 == 0 ? 0 : normal.next() })
        blocks.append((0..<256).map { i in Float(i % 16) - 8 })  // exact code grid
        blocks.append((0..<256).map { i in i == 17 ? 1 : 0 })  // one spike
        blocks.append((0..<256).map { i in i == 200 ? -1 : 0 })
        blocks.append((0..<256).map { i in Float(i) })
        // Left to the Swift kernel: non-finite or huge; the blocks around them still come from the native kernel.
        blocks.append((0..<256).map { i in i == 5 ? .infinity : normal.next() })
        blocks.append((0..<256).map { i in i == 250 ? .nan : normal.next() })
        blocks.append((0..<256).map { i in i == 0 ? 1e20 : normal.next() })
        blocks.append((0..<256).map { _ in normal.next() * 3e38 })
        blocks.append((0..<256).map { _ in normal.next() * 0.02 })
        Self.compare(Array(blocks.joined()), type, "edge cases in a row")
        for (index, block) in blocks.enumerated() {
            Self.compare(block, type, "edge case \(index) alone")
        }
    }
}
