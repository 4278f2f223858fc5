@testable import NF4Kit
import Testing

/// The export rounds values that were not f16 to f16 before a llama-quantize type (llama-quantize reads the F16
/// file); the chunked rounding must give what the standard library's `Float16` gives for every value.
@Suite struct GGUFExportRoundToHalfTests {
    @Test func `values round to the nearest f16 as Float16 does, across chunk boundaries`() {
        // 10,000 bit patterns spread over the whole float range (zeros, f16 subnormals and overflow, ties), no NaN.
        var values: [Float] = (0..<10_000).map { i in
            let bits = UInt32(truncatingIfNeeded: i &* 429_497)
            return Float(bitPattern: bits & 0x7F80_0000 == 0x7F80_0000 ? bits & 0xBFFF_FFFF : bits)
        }
        values += [0, -0.0, 65504, 65520, 65519.996, 1.0009765625 * 0.5, Float(Float16.leastNonzeroMagnitude) / 2]
        let expected = values.map { Float(Float16($0)).bitPattern }
        values.withUnsafeMutableBufferPointer { GGUFExport.roundToHalf($0) }
        let differences = zip(values, expected).filter { $0.0.bitPattern != $0.1 }.count
        #expect(differences == 0)
    }
}
