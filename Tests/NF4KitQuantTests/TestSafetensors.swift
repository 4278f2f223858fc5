import Foundation
import NF4KitCore

/// A minimal safetensors reader for the golden files (test-only; the library's reader lives in NF4KitFormats).
///
/// It trusts the files (they are our committed fixtures) and keeps tensors in data order.
struct TestSafetensors {
    let tensors: [Tensor]
    let byName: [String: Tensor]
    let headerKeysInOrder: [String]

    init(path: String) throws {
        let region = try MappedRegion(mapping: path)
        let all = region.all
        let headerLength = all.withUnsafeBytes { Int(UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self))) }
        let headerBytes = all.slice(8..<(8 + headerLength)).array
        let json = try JSONSerialization.jsonObject(with: Data(headerBytes)) as! [String: Any]
        var list: [Tensor] = []
        for (name, value) in json where name != "__metadata__" {
            let entry = value as! [String: Any]
            let dtype = DType(safetensorsName: entry["dtype"] as! String)!
            let shape = Shape((entry["shape"] as! [NSNumber]).map(\.intValue))
            let offsets = (entry["data_offsets"] as! [NSNumber]).map(\.intValue)
            let start = 8 + headerLength + offsets[0]
            let descriptor = TensorDescriptor(
                name: name, dtype: dtype, shape: shape, file: path, fileOffset: Int64(start), byteCount: offsets[1] - offsets[0])
            list.append(Tensor(descriptor: descriptor, bytes: all.slice(start..<(8 + headerLength + offsets[1]))))
        }
        list.sort { $0.descriptor.fileOffset < $1.descriptor.fileOffset }
        tensors = list
        byName = Dictionary(uniqueKeysWithValues: list.map { ($0.name, $0) })
        headerKeysInOrder = list.map(\.name)
    }

    subscript(name: String) -> Tensor? { byName[name] }
}

extension TensorBytes {
    /// Float32 little-endian elements.
    var floats: [Float] { elements(as: UInt32.self).map(Float.init(bitPattern:)) }
}
