import NF4KitCore
@testable import NF4KitQuant
import NF4KitTestSupport
import Testing

@Suite struct BlockQuantizerTests {
    static func f32Bytes(_ values: [Float]) -> [UInt8] {
        values.flatMap { v in withUnsafeBytes(of: v.bitPattern.littleEndian) { Array($0) } }
    }

    static func randomInput(count: Int, dtype: DType, seed: UInt64) -> [UInt8] {
        var generator = SeededGenerator(seed: seed)
        let values = (0..<count).map { _ in Float(generator.nextNormal() * 0.02) }
        return f32Bytes(values).withUnsafeBytes { FloatConversion.convert($0, from: .f32, to: dtype, count: count) }
    }

    @Test(arguments: [0, 16, 48, 96, 8192, 65, -64])
    func `rejects block sizes bitsandbytes does not accept`(blocksize: Int) {
        let error = #expect(throws: CheckpointError.self) { try BlockQuantizer(blocksize: blocksize) }
        #expect(error?.code == .invalidArgument)
    }

    @Test(arguments: BlockQuantizer.supportedBlocksizes)
    func `accepts every bitsandbytes block size from 32 to 4096`(blocksize: Int) throws {
        let input = Self.randomInput(count: 10_001, dtype: .bf16, seed: 7)
        let q = try input.withUnsafeBytes {
            try BlockQuantizer(blocksize: blocksize).quantize(
                $0, dtype: .bf16, shape: [10_001], doubleQuantization: true)
        }
        #expect(q.blockCount == (10_001 + blocksize - 1) / blocksize)
        #expect(q.packed.count == 5_001)
    }

    @Test(arguments: [DType.f16, .bf16, .f32], QuantType.allCases)
    func `block ranges quantized separately give the same bytes as one call`(dtype: DType, type: QuantType) throws {
        let n = 64 * 77 + 33
        let input = Self.randomInput(count: n, dtype: dtype, seed: 11)
        let quantizer = try BlockQuantizer(quantType: type, blocksize: 64)
        let blocks = quantizer.blockCount(elementCount: n)
        let whole = try input.withUnsafeBytes {
            try quantizer.quantize($0, dtype: dtype, shape: [n], doubleQuantization: false)
        }
        var packed = [UInt8](repeating: 0xAA, count: BlockQuantizer.packedByteCount(elementCount: n))
        var absmax = [Float](repeating: -1, count: blocks)
        input.withUnsafeBytes { raw in
            packed.withUnsafeMutableBytes { p in
                absmax.withUnsafeMutableBufferPointer { a in
                    for range in [30..<blocks, 0..<1, 1..<30] {  // out of order, like threads finishing
                        quantizer.quantizeBlocks(
                            range, of: raw, dtype: dtype, elementCount: n, packedInto: p, absmaxInto: a)
                    }
                }
            }
        }
        #expect(packed == whole.packed.array)
        #expect(absmax == whole.absmaxValues())
    }

    @Test(arguments: [DType.f16, .bf16, .f32], QuantType.allCases)
    func `quantize dequantize quantize reproduces the codes and absmax`(dtype: DType, type: QuantType) throws {
        let n = 4096 + 17
        let input = Self.randomInput(count: n, dtype: dtype, seed: 3)
        let quantizer = try BlockQuantizer(quantType: type, blocksize: 64)
        let first = try input.withUnsafeBytes {
            try quantizer.quantize($0, dtype: dtype, shape: [n], doubleQuantization: false)
        }
        let restored = first.dequantized()
        let second = try restored.withUnsafeBytes {
            try quantizer.quantize($0, dtype: dtype, shape: [n], doubleQuantization: false)
        }
        if type == .nf4 {
            #expect(second.packed.array == first.packed.array)
        }  // FP4 CPU: code 8 (tiny positives) decodes to 0.0, which re-quantizes to code 0, the same value
        #expect(second.absmaxValues() == first.absmaxValues())
        #expect(second.dequantized().array == restored.array)
    }

    @Test func `f64 input is quantized as its float32 rounding and recorded as float32`() throws {
        let values: [Double] = (0..<128).map { Double(($0 * 37) % 101 - 50) * 0.001 + 1e-9 }
        let f64 = values.flatMap { v in withUnsafeBytes(of: v.bitPattern.littleEndian) { Array($0) } }
        let f32 = Self.f32Bytes(values.map { Float($0) })
        let quantizer = try BlockQuantizer()
        let a = try f64.withUnsafeBytes {
            try quantizer.quantize($0, dtype: .f64, shape: [128], doubleQuantization: true)
        }
        let b = try f32.withUnsafeBytes {
            try quantizer.quantize($0, dtype: .f32, shape: [128], doubleQuantization: true)
        }
        #expect(a.packed.array == b.packed.array)
        #expect(a.absmaxValues() == b.absmaxValues())
        #expect(a.dtype == .f32)
    }

    @Test func `rejects input whose byte count does not match the shape`() throws {
        let bytes = [UInt8](repeating: 0, count: 10)
        let error = #expect(throws: CheckpointError.self) {
            try bytes.withUnsafeBytes {
                try BlockQuantizer().quantize($0, dtype: .f16, shape: [2, 3], doubleQuantization: false, name: "w")
            }
        }
        #expect(error?.code == .shapeMismatch)
        #expect(error?.tensor == "w")
    }

    @Test func `rejects non-float input`() throws {
        let bytes = [UInt8](repeating: 0, count: 64)
        let error = #expect(throws: CheckpointError.self) {
            try bytes.withUnsafeBytes {
                try BlockQuantizer().quantize($0, dtype: .u8, shape: [64], doubleQuantization: false)
            }
        }
        #expect(error?.code == .unsupportedDType)
    }

    // Spec 2.6: the special cases where the profiles differ.

    @Test func `an all-zero block gives codes 7 on CPU and codes 0 on CUDA`() throws {
        let input = Self.f32Bytes([Float](repeating: 0, count: 64))
        let cpu = try input.withUnsafeBytes {
            try BlockQuantizer(profile: .cpu).quantize($0, dtype: .f32, shape: [64], doubleQuantization: false)
        }
        let cuda = try input.withUnsafeBytes {
            try BlockQuantizer(profile: .cuda).quantize($0, dtype: .f32, shape: [64], doubleQuantization: false)
        }
        #expect(cpu.packed.array == [UInt8](repeating: 0x77, count: 32))
        #expect(cuda.packed.array == [UInt8](repeating: 0x00, count: 32))
        #expect(cpu.absmaxValues() == [0])
        #expect(cuda.absmaxValues() == [0])
    }

    @Test func `a partial all-zero last block stores the clamped absmax on CPU`() throws {
        let input = Self.f32Bytes([Float](repeating: 0, count: 10))
        let cpu = try input.withUnsafeBytes {
            try BlockQuantizer(profile: .cpu).quantize($0, dtype: .f32, shape: [10], doubleQuantization: false)
        }
        #expect(cpu.absmaxValues().map(\.bitPattern) == [0x006C_E3EE])
        #expect(cpu.packed.array == [UInt8](repeating: 0x77, count: 5))
    }

    @Test func `a NaN makes the CPU block absmax NaN and every code 15; CUDA ignores it and codes it 0`() throws {
        var values = [Float](repeating: 0.5, count: 64)
        values[0] = 1
        values[3] = .nan
        let input = Self.f32Bytes(values)
        let cpu = try input.withUnsafeBytes {
            try BlockQuantizer(profile: .cpu).quantize($0, dtype: .f32, shape: [64], doubleQuantization: false)
        }
        let cuda = try input.withUnsafeBytes {
            try BlockQuantizer(profile: .cuda).quantize($0, dtype: .f32, shape: [64], doubleQuantization: false)
        }
        #expect(cpu.absmaxValues()[0].isNaN)
        #expect(cpu.packed.array == [UInt8](repeating: 0xFF, count: 32))
        #expect(cuda.absmaxValues() == [1])
        #expect(cuda.packed.array[0] == 0xF0 | 12)  // 1.0 -> 15; 0.5 -> 12 (0.44 < 0.5 <= 0.5017 threshold)
        #expect(cuda.packed.array[1] == 0xC0)  // 0.5 -> 12, NaN -> 0
    }

    @Test func `an infinite element is coded 15 on CPU and 0 on CUDA, finite ones 7`() throws {
        var values = [Float](repeating: 0.25, count: 64)
        values[1] = .infinity
        let input = Self.f32Bytes(values)
        let cpu = try input.withUnsafeBytes {
            try BlockQuantizer(profile: .cpu).quantize($0, dtype: .f32, shape: [64], doubleQuantization: false)
        }
        let cuda = try input.withUnsafeBytes {
            try BlockQuantizer(profile: .cuda).quantize($0, dtype: .f32, shape: [64], doubleQuantization: false)
        }
        #expect(cpu.packed.array[0] == 0x7F)
        #expect(cuda.packed.array[0] == 0x70)
        #expect(cpu.packed.array[1...].allSatisfy { $0 == 0x77 })
        #expect(cuda.packed.array[1...].allSatisfy { $0 == 0x77 })
    }

    @Test func `FP4 values that round to zero take opposite codes on CPU and CUDA`() throws {
        var values = [Float](repeating: 0, count: 64)
        values[0] = 1
        values[1] = 0.001  // s in (0, 0.0026]: CPU 8, CUDA 0
        values[2] = -0.001  // s in (-0.0026, 0): CPU 0, CUDA 8
        let input = Self.f32Bytes(values)
        let cpu = try input.withUnsafeBytes {
            try BlockQuantizer(quantType: .fp4, profile: .cpu).quantize(
                $0, dtype: .f32, shape: [64], doubleQuantization: false)
        }
        let cuda = try input.withUnsafeBytes {
            try BlockQuantizer(quantType: .fp4, profile: .cuda).quantize(
                $0, dtype: .f32, shape: [64], doubleQuantization: false)
        }
        #expect(Array(cpu.packed.array[0..<2]) == [0x38, 0x00])
        #expect(Array(cuda.packed.array[0..<2]) == [0x30, 0x80])
    }

    @Test func `the 8-bit code rules agree with the spec's example D and LUT anchors`() {
        let lookup = DynamicLookup.shared
        #expect(lookup.cpuCode(Float(5.694688661606051e-05)) == 132)
        #expect(lookup.nearestCode(Float(5.694688661606051e-05)) == 133)
        #expect(lookup.cpuCode(Float(0.06906230002641678)) == 180)
        #expect(lookup.nearestCode(Float(0.06906230002641678)) == 179)
        #expect(
            [lookup.table[0], lookup.table[32767], lookup.table[32768], lookup.table[65535]] == [0, 123, 131, 255])
        for t: Float in [0.05882353, -0.4117647, -0.64705884, 1.0] {  // example B: both rules agree
            #expect(lookup.cpuCode(t) == lookup.nearestCode(t))
        }
    }

    @Test func `the offset sum splits into chunks only for 32768 values or more`() {
        let small = [Float](repeating: 0.1, count: 32_767)
        let large = (0..<100_000).map { Float($0 % 977) * 0.001 + 0.01 }
        small.withUnsafeBufferPointer { buffer in
            #expect(
                DoubleQuantization.offset(of: buffer, threadCount: 1)
                    == DoubleQuantization.offset(of: buffer, threadCount: 8))
        }
        large.withUnsafeBufferPointer { buffer in
            let exact = large.reduce(0.0) { $0 + Double($1) } / Double(large.count)
            for threads in [1, 2, 4, 8] {
                #expect(abs(Double(DoubleQuantization.offset(of: buffer, threadCount: threads)) - exact) < 1e-5)
            }
        }
    }
}

@Suite struct DequantizeKernelTests {
    @Test func `the fast f16 narrowing equals Float16 conversion`() {
        var bits: UInt32 = 0
        var mismatches = 0
        // Every 997th float32 pattern (4.3 million values across all exponents), plus the f16 edges.
        while true {
            let value = Float(bitPattern: bits)
            if DequantizeKernel.halfBits(value) != Float16(value).bitPattern && !value.isNaN { mismatches += 1 }
            let (next, overflow) = bits.addingReportingOverflow(997)
            if overflow { break }
            bits = next
        }
        #expect(mismatches == 0)
        for value: Float in [
            65504, 65519.99, 65520, 6.1035156e-05, 6.097555e-05, 5.9604645e-08, 2.9802322e-08, 2.9802326e-08, -0.0,
            1e-30,
        ] {
            #expect(DequantizeKernel.halfBits(value) == Float16(value).bitPattern, "\(value)")
        }
        #expect(DequantizeKernel.halfBits(Float(bitPattern: 0xFFC0_0000)) == 0xFE00)
    }
}

@Suite struct PlanningPassTests {
    @Test(arguments: [DType.f16, .bf16, .f32], [true, false])
    func `the planned quant state equals the one quantizing produces`(dtype: DType, doubleQuantization: Bool) throws {
        let n = 64 * 300 + 31
        let input = BlockQuantizerTests.randomInput(count: n, dtype: dtype, seed: 5)
        let quantizer = try BlockQuantizer(quantType: .fp4, blocksize: 64)
        let planned = try input.withUnsafeBytes {
            try quantizer.plannedQuantState($0, dtype: dtype, shape: [n], doubleQuantization: doubleQuantization)
        }
        let actual = try input.withUnsafeBytes {
            try quantizer.quantize($0, dtype: dtype, shape: [n], doubleQuantization: doubleQuantization)
        }
        #expect(planned == BnbQuantState(actual))
        #expect(planned.jsonBytes == (try actual.bnbTensors(weightName: "w")).last?.bytes.array)
    }
}

@Suite struct PlanningAbsmaxTests {
    /// 16-bit inputs take the planning pass's max on raw halves; blocks with zeros, -0, subnormals, the largest
    /// finite values, inf and NaN (and a partial last block of tiny values) must give the quantizer's absmax bits.
    @Test(arguments: [DType.f16, .bf16], [QuantizationProfile.cpu, .cuda])
    func `planning absmax equals the quantizer's on special 16-bit values`(
        dtype: DType, profile: QuantizationProfile
    )
        throws
    {
        let specials: [UInt16] =
            dtype == .f16
            ? [0x0000, 0x8000, 0x0001, 0x83FF, 0x7BFF, 0xFBFF, 0x7C00, 0xFC00, 0x7E00, 0x7D01, 0xFE01, 0x3C00]
            : [0x0000, 0x8000, 0x0001, 0x807F, 0x7F7F, 0xFF7F, 0x7F80, 0xFF80, 0x7FC0, 0x7F81, 0xFFC1, 0x3F80]
        var generator = SeededGenerator(seed: 77)
        var halves: [UInt16] = []
        for special in specials {  // one block per special value, among small normal values
            for i in 0..<64 {
                halves.append(i == 17 ? special : UInt16(truncatingIfNeeded: generator.next()) & 0x87FF | 0x1000)
            }
        }
        halves += [0x0001, 0x8001, 0x0000]  // partial block of tiny values: the CPU clamps the stored absmax
        let n = halves.count
        let quantizer = try BlockQuantizer(quantType: .nf4, blocksize: 64, profile: profile)
        let blocks = quantizer.blockCount(elementCount: n)
        var planned = [Float](repeating: 0, count: blocks)
        let actual = try halves.withUnsafeBytes { raw in
            planned.withUnsafeMutableBufferPointer {
                quantizer.blockAbsmax(0..<blocks, of: raw, dtype: dtype, elementCount: n, into: $0)
            }
            return try quantizer.quantize(raw, dtype: dtype, shape: [n], doubleQuantization: false).absmaxValues()
        }
        #expect(planned.map(\.bitPattern) == actual.map(\.bitPattern))
    }
}

@Suite struct WidenTests {
    @Test func `the arithmetic f16 widening equals Float16 conversion for every pattern`() {
        var mismatches: [UInt16] = []
        for bits in 0...UInt16.max {
            let ours = QuantizeKernel.halfToFloat(bits).bitPattern
            let reference = Float(Float16(bitPattern: bits)).bitPattern
            if ours != reference { mismatches.append(bits) }
        }
        #expect(mismatches.isEmpty, "first mismatches: \(mismatches.prefix(8).map { String($0, radix: 16) })")
    }
}

/// The AVX2 + F16C kernel (C target) against the Swift kernel: the same absmax and packed bytes for every rule,
/// block size and profile, on normal data and on blocks with zeros, -0, subnormals, inf and NaN.
@Suite struct NativeKernelTests {
    @Test func `the native kernel runs on this machine when it has AVX2 and F16C`() {
        #if arch(x86_64)
        // CI and the project's machines are x86-64 with AVX2 and F16C (docs/performance.md).
        #expect(QuantizeKernel.hasNativeKernel)
        #else
        #expect(!QuantizeKernel.hasNativeKernel)
        #endif
    }

    @Test(
        .enabled(
            if: BlockQuantizer.nativeKernelAvailable,
            "this CPU has no AVX2 + F16C, so the native kernel was not tested (only the Swift kernel runs here)"),
        arguments: [DType.f16, .bf16, .f32],
        [(QuantType.nf4, QuantizationProfile.cpu), (.nf4, .cuda), (.fp4, .cpu), (.fp4, .cuda)])
    func `native and Swift kernels give the same bytes`(dtype: DType, rule: (QuantType, QuantizationProfile)) throws {
        var generator = SeededGenerator(seed: 31)
        var values = (0..<(64 * 400)).map { _ in Float(generator.nextNormal() * 0.03) }
        // Float(bitPattern: 1) and Float(bitPattern: 713_624) are the subnormals 1e-45 and 1e-39 round to.
        let specials: [Float] = [
            0, -0.0, Float(bitPattern: 1), -6e-8, Float(bitPattern: 713_624), 65504, 3e38, .infinity, -.infinity, .nan,
            1,
        ]
        for (k, special) in specials.enumerated() {
            values[64 * (3 * k + 1) + 5] = special
            if special == 0 {  // whole zero blocks, +0 and -0
                for i in 0..<64 { values[64 * (3 * k + 2) + i] = special }
            }
        }
        values += [0.125, -0.25, 0]  // partial last block
        let n = values.count
        let input = values.withUnsafeBytes { FloatConversion.convert($0, from: .f32, to: dtype, count: n) }
        for blocksize in BlockQuantizer.supportedBlocksizes {
            func run(native: Bool) throws -> QuantizedTensor {
                let quantizer = try BlockQuantizer(
                    quantType: rule.0, blocksize: blocksize, profile: rule.1, kernel: native ? .automatic : .portable)
                return try input.withUnsafeBytes {
                    try quantizer.quantize($0, dtype: dtype, shape: [n], doubleQuantization: true)
                }
            }
            let native = try run(native: true)
            let swift = try run(native: false)
            #expect(native.packed.array == swift.packed.array, "blocksize \(blocksize)")
            #expect(native.absmaxValues().map(\.bitPattern) == swift.absmaxValues().map(\.bitPattern))
        }
    }
}
