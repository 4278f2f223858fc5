import Foundation
import NF4KitCore
import NF4KitTestSupport
import Testing

@Suite struct PythonFloatTests {
    /// (IEEE bits, `json.dumps(value)` printed by CPython 3.11.7; equal to `repr(value)` for finite values).
    static let printedByPython: [(UInt64, String)] = [
        (0x3FB9_9999_9999_999A, "0.1"),
        (0x3EE4_F8B5_88E3_68F1, "1e-05"),
        (0x3F0A_36E2_EB1C_432D, "5e-05"),
        (0x4341_C379_37E0_8000, "1e+16"),
        (0x430C_6BF5_2634_0000, "1000000000000000.0"),
        (0x4341_C379_37E0_7FFF, "9999999999999998.0"),
        (0x437B_69B4_BA63_0F35, "1.2345678901234568e+17"),
        (0x3F1A_36E2_EB1C_432D, "0.0001"),
        (0x3F1C_D5F9_9C38_B04B, "0.00011"),
        (0x3F1A_36E2_EB1C_432C, "9.999999999999999e-05"),
        (0x3E7A_D7F2_9ABC_AF48, "1e-07"),
        (0x8000_0000_0000_0000, "-0.0"),
        (0x0000_0000_0000_0000, "0.0"),
        (0x4000_0000_0000_0000, "2.0"),
        (0xC00C_0000_0000_0000, "-3.5"),
        (0x7E41_EB2D_6600_5835, "1.5e+300"),
        (0x0000_0000_0000_0001, "5e-324"),
        (0x0010_0000_0000_0000, "2.2250738585072014e-308"),
        (0x7FEF_FFFF_FFFF_FFFF, "1.7976931348623157e+308"),
        (0x3FD3_3333_3333_3334, "0.30000000000000004"),
        (0x4059_0000_0000_0000, "100.0"),
        (0x4480_F0CF_064D_D592, "1e+22"),
        (0x44B5_2D02_C7E1_4AF6, "1e+23"),
        (0x4340_0000_0000_0000, "9007199254740992.0"),
        (0x3E70_1B2B_29A4_692B, "6e-08"),
        (0x3FAA_BF55_6000_0000, "0.0522410087287426"),
        (0x40FE_240C_9FBE_76C9, "123456.789"),
        (0x3FD5_5555_5555_5555, "0.3333333333333333"),
        (0x3FE5_5555_5555_5555, "0.6666666666666666"),
        (0x0000_0000_0000_07E8, "1e-320"),
        (0x40EF_FC00_0000_0000, "65504.0"),
        (0x47EF_FFFF_E000_0000, "3.4028234663852886e+38"),
        (0x36A0_0000_0000_0000, "1.401298464324817e-45"),
        (0x3FEF_FFFF_FFFF_FFFF, "0.9999999999999999"),
        (0x7FF8_0000_0000_0000, "NaN"),
        (0x7FF0_0000_0000_0000, "Infinity"),
        (0xFFF0_0000_0000_0000, "-Infinity"),
    ]

    @Test(arguments: printedByPython)
    func `repr matches what Python prints`(_ bits: UInt64, _ text: String) {
        #expect(PythonFloat.repr(Double(bitPattern: bits)) == text)
    }

    @Test func `repr matches Python on 20000 seeded doubles of every magnitude`() throws {
        var rng = SeededGenerator(seed: 0x5EED)
        var values: [Double] = []
        for i in 0..<20_000 {
            switch i % 4 {
            case 0: values.append(Double(bitPattern: rng.next()))  // any bit pattern: all exponents, NaN, inf
            case 1:
                values.append(
                    Double.random(in: -1...1, using: &rng) * pow(10, Double(Int.random(in: -8...20, using: &rng))))
            case 2:  // f32 values, as configs hold
                values.append(Double(Float(bitPattern: UInt32(truncatingIfNeeded: rng.next()))))
            default:  // near the switch points 1e-4 and 1e16, and short decimals
                let base = [1e-4, 1e16, 1e-5, 1e15, 0.1, 1][Int.random(in: 0..<6, using: &rng)]
                values.append(base.nextUp.nextUp + Double(Int.random(in: -3...3, using: &rng)) * base.ulp)
            }
        }
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let input = values.map { String($0.bitPattern, radix: 16) }.joined(separator: "\n") + "\n"
        try Array(input.utf8).write(to: dir.file("bits.txt"))
        let result = try PythonInterop.run(
            script: "Tests/Interop/safetensors_json_floats.py", arguments: [dir.file("bits.txt")])
        try #require(result.status == 0, "\(result.stderr)")
        let lines = result.stdout.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
        try #require(lines.count == values.count)
        var mismatches = 0
        for (value, python) in zip(values, lines) where PythonFloat.repr(value) != python {
            mismatches += 1
            if mismatches <= 5 {
                Issue.record("\(value.bitPattern): Python \(python), ours \(PythonFloat.repr(value))")
            }
        }
        #expect(mismatches == 0)
    }
}
