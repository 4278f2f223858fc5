import Foundation
import NF4KitCore
import NF4KitTestSupport

/// A minimal safetensors parser for the GGUF tests (the golden expected values and the bitsandbytes subset).
/// It is test scaffolding, independent of the library's readers under test.
enum GGUFTestSafetensors {
    struct Entry {
        var name: String
        var dtype: DType
        var shape: [Int]
        var bytes: [UInt8]

        var floats: [Float] {
            stride(from: 0, to: bytes.count, by: 4).map { i in
                Float(
                    bitPattern: UInt32(bytes[i]) | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2]) << 16 | UInt32(
                        bytes[i + 3]) << 24)
            }
        }

        var tensor: Tensor {
            Tensor(
                descriptor: TensorDescriptor(
                    name: name, dtype: dtype, shape: Shape(shape), file: "test", fileOffset: 0, byteCount: bytes.count),
                bytes: TensorBytes(copyingElementsOf: bytes))
        }
    }

    /// Entries in data-offset order.
    static func load(_ path: String) throws -> [Entry] {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        let headerLength = data.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        let header = try JSONSerialization.jsonObject(with: data.subdata(in: 8..<(8 + headerLength))) as! [String: Any]
        var entries: [(Int, Entry)] = []
        for (name, value) in header where name != "__metadata__" {
            let info = value as! [String: Any]
            let offsets = info["data_offsets"] as! [Int]
            let bytes = [UInt8](data.subdata(in: (8 + headerLength + offsets[0])..<(8 + headerLength + offsets[1])))
            entries.append(
                (
                    offsets[0],
                    Entry(
                        name: name, dtype: DType(rawValue: info["dtype"] as! String)!, shape: info["shape"] as! [Int],
                        bytes: bytes)
                ))
        }
        return entries.sorted { $0.0 < $1.0 }.map(\.1)
    }

    static func byName(_ path: String) throws -> [String: Entry] {
        Dictionary(uniqueKeysWithValues: try load(path).map { ($0.name, $0) })
    }
}

extension TensorBytes {
    /// Little-endian f32 values.
    var floats: [Float] { elements(as: UInt32.self).map(Float.init(bitPattern:)) }
}
