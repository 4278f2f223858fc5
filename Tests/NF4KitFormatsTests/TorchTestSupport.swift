import Foundation
import NF4KitCore
import NF4KitFormats
import NF4KitTestSupport

/// Helpers for the Torch reader tests.
enum TorchFixture {
    static func path(_ relative: String) -> String { Fixture.path("torch/" + relative) }

    /// The error reading `relative` throws, or `nil` if it reads.
    static func error(_ relative: String, limits: TorchReadLimits = .default) -> CheckpointError? {
        do {
            _ = try TorchCheckpointReader.read(path: path(relative), limits: limits)
            return nil
        } catch {
            return error
        }
    }
}

/// One tensor of a safetensors file, read by a deliberately tiny test-only parser (independent of the torch
/// reader) so golden `.bin` files can be compared with the golden `.safetensors` the same tools wrote.
struct SafetensorsEntry: Equatable {
    var dtype: String
    var shape: [Int]
    var bytes: [UInt8]
}

enum MinimalSafetensors {
    static func read(_ path: String) throws -> [String: SafetensorsEntry] {
        let data = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        let headerLength = data[0..<8].enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        let header = try StrictJSON.parse(Array(data[8..<(8 + headerLength)]))
        var result: [String: SafetensorsEntry] = [:]
        for (name, value) in header.objectValue! where name != "__metadata__" {
            let offsets = value["data_offsets"]!.arrayValue!.map { $0.intValue! }
            let start = 8 + headerLength + offsets[0]
            let end = 8 + headerLength + offsets[1]
            result[name] = SafetensorsEntry(
                dtype: value["dtype"]!.stringValue!, shape: value["shape"]!.arrayValue!.map { $0.intValue! },
                bytes: Array(data[start..<end]))
        }
        return result
    }
}

extension Array where Element == UInt8 {
    /// Little-endian float32 values.
    var floats: [Float] {
        stride(from: 0, to: count, by: 4).map { offset in
            Float(
                bitPattern: self[offset..<(offset + 4)].enumerated().reduce(UInt32(0)) {
                    $0 | UInt32($1.element) << (8 * UInt32($1.offset))
                })
        }
    }
}
