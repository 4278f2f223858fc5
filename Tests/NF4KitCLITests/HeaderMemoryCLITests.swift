import Foundation
import NF4KitTestSupport
import Testing

/// A safetensors header costs memory in proportion to its size: it is read in one pass into compact tensor
/// entries, never into a JSON tree (issue 13: a 99 MB header took 2.6 GB).
@Suite struct HeaderMemoryCLITests {
    /// A safetensors file of one F32 scalar whose tensor info carries an unknown field `x` holding `count` zeros.
    static func headerWithLongField(count: Int) -> [UInt8] {
        var header = Array(#"{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":["#.utf8)
        header.reserveCapacity(header.count + 2 * count + 3)
        for index in 0..<count { header += index == 0 ? [0x30] : [0x2C, 0x30] }
        header += Array("]}}".utf8)
        var bytes = [UInt8](repeating: 0, count: 8)
        withUnsafeBytes(of: UInt64(header.count).littleEndian) { bytes.replaceSubrange(0..<8, with: $0) }
        return bytes + header + [0x00, 0x00, 0x80, 0x3F]
    }

    @Test func `a 30 MB header of one long unknown field is read within a 600 MB address space`() throws {
        let directory = TemporaryDirectory("nf4kit-header-memory")
        defer { directory.cleanup() }
        let path = directory.file("long-field.safetensors")
        // 15 million zeros: the JSON tree of the old reader took about 0.9 GB and aborted under this limit.
        try Data(Self.headerWithLongField(count: 15_000_000)).write(to: URL(fileURLWithPath: path))
        let result = try HostileInputCLITests.runLimited(kilobytes: 600_000, ["inspect", path])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("tensors       1 (1 stored)"))
        #expect(!result.stderr.contains("Fatal error") && !result.stderr.contains("crashed"))
    }

    @Test func `a header of 100,000 empty tensors is read within a 600 MB address space`() throws {
        let directory = TemporaryDirectory("nf4kit-header-memory")
        defer { directory.cleanup() }
        var header = "{"
        for index in 0..<100_000 {
            header += (index == 0 ? "" : ",") + "\"t\(index)\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}"
        }
        header += "}"
        var bytes = [UInt8](repeating: 0, count: 8)
        withUnsafeBytes(of: UInt64(header.utf8.count).littleEndian) { bytes.replaceSubrange(0..<8, with: $0) }
        let path = directory.file("empty-tensors.safetensors")
        try Data(bytes + Array(header.utf8)).write(to: URL(fileURLWithPath: path))
        let result = try HostileInputCLITests.runLimited(kilobytes: 600_000, ["inspect", path])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("tensors       100,000 (100,000 stored)"))
    }
}
