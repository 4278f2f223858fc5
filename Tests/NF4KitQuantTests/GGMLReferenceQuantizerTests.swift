import NF4KitCore
import NF4KitFormats
import NF4KitQuant
import NF4KitTestSupport
import Testing

/// Block tensors that llama-quantize wrote into the golden `llama-g/gguf/<TYPE>.gguf` files, re-made from the same
/// F16.gguf rows by ``GGMLBlockCodec``, must be the same bytes. The first rows of every tensor keep this quick in a
/// debug build; `GGUFRequantizeTests` compares whole files.
@Suite struct GGMLReferenceQuantizerTests {
    static let fileTypes = [
        "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q2_K", "Q3_K_M", "Q4_K_S", "Q4_K_M", "Q5_K_M", "Q6_K", "IQ4_NL", "IQ4_XS",
    ]

    static let rowsPerTensor = 6

    private static func values(_ file: GGUFFile, _ info: GGUFTensorInfo) -> [Float] {
        var out = [Float](repeating: 0, count: info.elementCount)
        file.bytes(of: info).withUnsafeBytes { raw in
            out.withUnsafeMutableBufferPointer { GGMLBlockCodec.decode(raw, as: info.type.dtype!, into: $0) }
        }
        return out
    }

    @Test(arguments: fileTypes)
    func `each quantized tensor of the golden file is the reference quantizer's bytes`(fileType: String) throws {
        let source = try GGUFFile.read(path: Fixture.path("llama-g/gguf/F16.gguf"))
        let golden = try GGUFFile.read(path: Fixture.path("llama-g/gguf/\(fileType).gguf"))
        var checked = Set<String>()
        for info in golden.tensors where info.type.isQuantized {
            #expect(GGMLBlockCodec.canQuantize(info.type), "\(fileType): \(info.name) is \(info.type)")
            guard GGMLBlockCodec.canQuantize(info.type) else { continue }
            let original = try #require(source.tensor(named: info.name))
            #expect(original.dimensions == info.dimensions)
            let rowLength = info.dimensions[0]
            let rows = min(Self.rowsPerTensor, info.elementCount / rowLength)
            let x = Array(Self.values(source, original).prefix(rows * rowLength))
            var out = [UInt8](repeating: 0xA5, count: info.type.rowByteCount(elementCount: rowLength)! * rows)
            x.withUnsafeBufferPointer { src in
                out.withUnsafeMutableBytes { GGMLBlockCodec.quantize(src, as: info.type, into: $0) }
            }
            let expected = golden.bytes(of: info).withUnsafeBytes { Array($0.prefix(out.count)) }
            let firstDifference = zip(out, expected).enumerated().first { $0.element.0 != $0.element.1 }?.offset
            #expect(
                firstDifference == nil && out.count == expected.count,
                "\(fileType): \(info.name) (\(info.type)) differs first at byte \(firstDifference ?? -1)")
            checked.insert(info.type.name)
        }
        #expect(!checked.isEmpty)
    }
}
