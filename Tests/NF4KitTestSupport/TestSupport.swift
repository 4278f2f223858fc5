import Foundation
@_exported public import NF4KitFixtures

/// A seeded generator (SplitMix64): the same seed gives the same numbers on every machine.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    private var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// A standard normal sample (Box-Muller).
    public mutating func nextNormal() -> Double {
        let u1 = max(Double(next() >> 11) / Double(1 << 53), 1e-300)
        let u2 = Double(next() >> 11) / Double(1 << 53)
        return (-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2)
    }
}

/// A fresh temporary folder for one test, removed by `cleanup()`.
public struct TemporaryDirectory: Sendable {
    public let path: String
    public init(_ label: String = "nf4kit-test") {
        let base = FileManager.default.temporaryDirectory.path
        path = base + "/\(label)-\(UInt64.random(in: 0...UInt64.max))"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    public func file(_ name: String) -> String { path + "/" + name }
    public func cleanup() { try? FileManager.default.removeItem(atPath: path) }
}

/// Where ../shared sits relative to the repository (used only to check fixtures match the golden set).
public enum RepositoryPaths {
    /// The repository root, found from this source file's location.
    public static var root: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().path
    }
}

extension Array where Element == UInt8 {
    /// The bytes of the file at `path`.
    public init(contentsOf path: String) throws {
        self = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
    }
    /// Writes the bytes to `path`, replacing it.
    public func write(to path: String) throws {
        try Data(self).write(to: URL(fileURLWithPath: path))
    }
}
