import NF4KitCore
import NF4KitQuant
import NF4KitTestSupport
import Testing

/// Every case of every bitsandbytes golden vector file, bit for bit (CPU profile).
@Suite struct GoldenVectorTests {
    static let files: [String] = {
        var names: [String] = []
        for type in ["nf4", "fp4"] {
            for dtype in ["bf16", "f16", "f32"] {
                for blocksize in [64, 128, 256] { names.append("bnb-\(type)-\(dtype)-bs\(blocksize)") }
            }
        }
        return names
    }()

    static let cases = [
        "const_64", "heavy_tail_1024", "huge_256", "midpoints_nf4", "nested_partial_20000", "normal_4096", "odd_1",
        "odd_127", "odd_65", "tiny_256", "with_neg_zero_64", "zeros_128",
    ]

    struct Setting {
        let quantizer: BlockQuantizer
        let file: TestSafetensors
        let input: Tensor
    }

    func setting(_ fileName: String, _ caseName: String) throws -> Setting {
        let parts = fileName.split(separator: "-")
        let type = try #require(QuantType(rawValue: String(parts[1])))
        let blocksize = try #require(Int(parts[3].dropFirst(2)))
        let file = try TestSafetensors(path: Fixture.path("vectors/\(fileName).safetensors"))
        let input = try #require(file["\(caseName).input"])
        return Setting(quantizer: try BlockQuantizer(quantType: type, blocksize: blocksize), file: file, input: input)
    }

    @Test(arguments: files, cases)
    func `plain quantization matches bitsandbytes`(fileName: String, caseName: String) throws {
        let s = try setting(fileName, caseName)
        let q = try s.quantizer.quantize(s.input, doubleQuantization: false)
        let packed = try #require(s.file["\(caseName).plain.packed"])
        let absmax = try #require(s.file["\(caseName).plain.absmax"])
        let dequant = try #require(s.file["\(caseName).plain.dequant"])
        #expect(q.packed.array == packed.bytes.array, "packed")
        guard case .plain(let ours) = q.statistics else { Issue.record("expected plain statistics"); return }
        #expect(ours.array == absmax.bytes.array, "absmax")
        #expect(q.dequantized().array == dequant.bytes.array, "dequant")
        #expect(q.dtype == s.input.dtype)
    }

    @Test(arguments: files, cases)
    func `double quantization matches bitsandbytes`(fileName: String, caseName: String) throws {
        let s = try setting(fileName, caseName)
        let q = try s.quantizer.quantize(s.input, doubleQuantization: true)
        let packed = try #require(s.file["\(caseName).dq.packed"])
        let codes = try #require(s.file["\(caseName).dq.absmax"])
        let nested = try #require(s.file["\(caseName).dq.nested_absmax"])
        let offset = try #require(s.file["\(caseName).dq.offset"])
        let dequant = try #require(s.file["\(caseName).dq.dequant"])
        #expect(q.packed.array == packed.bytes.array, "packed")
        guard case .double(let dq) = q.statistics else { Issue.record("expected double statistics"); return }
        #expect(dq.codes.array == codes.bytes.array, "8-bit absmax codes")
        #expect(dq.nestedAbsmax.array == nested.bytes.array, "nested absmax")
        #expect(dq.offset.bitPattern == offset.bytes.floats[0].bitPattern, "offset")
        #expect(q.dequantized().array == dequant.bytes.array, "dequant")
    }

    @Test(arguments: files, cases)
    func `dequantizing the golden codes reproduces the golden output`(fileName: String, caseName: String) throws {
        let s = try setting(fileName, caseName)
        let n = s.input.shape.elementCount
        let packed = try #require(s.file["\(caseName).dq.packed"])
        let codes = try #require(s.file["\(caseName).dq.absmax"])
        let nested = try #require(s.file["\(caseName).dq.nested_absmax"])
        let offset = try #require(s.file["\(caseName).dq.offset"])
        let dequant = try #require(s.file["\(caseName).dq.dequant"])
        let q = try QuantizedTensor(
            quantType: s.quantizer.quantType, blocksize: s.quantizer.blocksize, shape: [n], dtype: s.input.dtype,
            packed: packed.bytes,
            statistics: .double(.init(codes: codes.bytes, nestedAbsmax: nested.bytes, offset: offset.bytes.floats[0])))
        #expect(q.dequantized().array == dequant.bytes.array)
        let plainPacked = try #require(s.file["\(caseName).plain.packed"])
        let plainAbsmax = try #require(s.file["\(caseName).plain.absmax"])
        let plainDequant = try #require(s.file["\(caseName).plain.dequant"])
        let plain = try QuantizedTensor(
            quantType: s.quantizer.quantType, blocksize: s.quantizer.blocksize, shape: [n], dtype: s.input.dtype,
            packed: plainPacked.bytes, statistics: .plain(absmax: plainAbsmax.bytes))
        #expect(plain.dequantized().array == plainDequant.bytes.array)
    }
}
