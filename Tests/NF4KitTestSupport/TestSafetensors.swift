import Foundation
public import NF4KitCore

/// A minimal safetensors reader for the golden files (test-only; the library's reader lives in NF4KitFormats).
///
/// It trusts the files (they are our committed fixtures) and keeps tensors in data order.
public struct TestSafetensors {
    public let tensors: [Tensor]
    public let byName: [String: Tensor]
    public let headerKeysInOrder: [String]

    public init(path: String) throws {
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
                name: name, dtype: dtype, shape: shape, file: path, fileOffset: Int64(start),
                byteCount: offsets[1] - offsets[0])
            list.append(Tensor(descriptor: descriptor, bytes: all.slice(start..<(8 + headerLength + offsets[1]))))
        }
        list.sort { $0.descriptor.fileOffset < $1.descriptor.fileOffset }
        tensors = list
        byName = Dictionary(uniqueKeysWithValues: list.map { ($0.name, $0) })
        headerKeysInOrder = list.map(\.name)
    }

    public subscript(name: String) -> Tensor? { byName[name] }
}

extension TensorBytes {
    /// Float32 little-endian elements.
    public var floats: [Float] { elements(as: UInt32.self).map(Float.init(bitPattern:)) }
}

/// The same minimal reader, shaped as plain entries with owned bytes (used by the GGUF tests).
public enum GGUFTestSafetensors {
    public struct Entry {
        public var name: String
        public var dtype: DType
        public var shape: [Int]
        public var bytes: [UInt8]

        public init(name: String, dtype: DType, shape: [Int], bytes: [UInt8]) {
            self.name = name
            self.dtype = dtype
            self.shape = shape
            self.bytes = bytes
        }

        /// Float32 little-endian elements.
        public var floats: [Float] { TensorBytes(copyingElementsOf: bytes).floats }

        /// The entry as a tensor over a heap copy of its bytes.
        public var tensor: Tensor {
            Tensor(
                descriptor: TensorDescriptor(
                    name: name, dtype: dtype, shape: Shape(shape), file: "test", fileOffset: 0, byteCount: bytes.count),
                bytes: TensorBytes(copyingElementsOf: bytes))
        }
    }

    /// Entries in data-offset order.
    public static func load(_ path: String) throws -> [Entry] {
        try TestSafetensors(path: path).tensors.map {
            Entry(name: $0.name, dtype: $0.dtype, shape: $0.shape.dimensions, bytes: $0.bytes.array)
        }
    }

    public static func byName(_ path: String) throws -> [String: Entry] {
        Dictionary(uniqueKeysWithValues: try load(path).map { ($0.name, $0) })
    }
}
