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
