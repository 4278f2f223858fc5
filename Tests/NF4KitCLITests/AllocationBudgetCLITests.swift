import Foundation
import NF4KitTestSupport
import Testing

/// Small crafted files whose contents would make a reader allocate far more than the file holds are refused with
/// exit 65, naming the file, before the memory is taken: every reader charges the file's allocation budget
/// (8 x its size + 16 MiB) first. Each test runs the CLI in a temporary folder of its own, under a 1 GB
/// address-space limit.
@Suite struct AllocationBudgetCLITests {
    /// `count` one-element arrays, `[[0],[0],...]`: 4 bytes of JSON each, two kept values (about 100 bytes) in memory.
    static func nestedArrays(_ count: Int) -> String {
        var text = "["
        text.reserveCapacity(4 * count + 2)
        for index in 0..<count { text += index == 0 ? "[0]" : ",[0]" }
        return text + "]"
    }

    static func le<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
        withUnsafeBytes(of: value.littleEndian) { Array($0) }
    }

    /// Runs `nf4kit arguments` under a 1 GB address-space limit and checks exit 65 naming `file` and the budget.
    static func expectRefused(_ arguments: [String], naming file: String, what: String) throws {
        let result = try HostileInputCLITests.runLimited(kilobytes: 1_000_000, arguments)
        #expect(result.status == 65, "\(result.stderr)")
        #expect(result.stderr.contains(file), "\(result.stderr)")
        #expect(result.stderr.contains(what), "\(result.stderr)")
        #expect(result.stderr.contains("budget of"), "\(result.stderr)")
        #expect(!result.stderr.contains("Fatal error") && !result.stderr.contains("crashed"))
    }

    @Test func `a 2 MB safetensors header whose shape holds a million entries is refused`() throws {
        let directory = TemporaryDirectory("nf4kit-budget-safetensors")
        defer { directory.cleanup() }
        // Each "0," becomes a JSON value (a heap box) before it is a shape entry: about 24 times its size.
        var header = #"{"w":{"dtype":"F32","shape":["#
        header += Array(repeating: "0", count: 1_000_000).joined(separator: ",")
        header += #"],"data_offsets":[0,0]}}"#
        let path = directory.file("shape.safetensors")
        try (Self.le(UInt64(header.utf8.count)) + Array(header.utf8)).write(to: path)
        try Self.expectRefused(
            ["inspect", path], naming: path, what: "the values of the safetensors header (tensor 'w')")
    }

    @Test func `a 2 MB config.json of nested arrays is refused naming it`() throws {
        let directory = TemporaryDirectory("nf4kit-budget-config")
        defer { directory.cleanup() }
        let folder = directory.file("model")
        try FileManager.default.copyItem(atPath: Fixture.path("llama-tiny/fp16"), toPath: folder)
        let config = folder + "/config.json"
        try FileManager.default.removeItem(atPath: config)
        try Array(("{\"model_type\":\"llama\",\"x\":" + Self.nestedArrays(500_000) + "}").utf8).write(to: config)
        try Self.expectRefused(["inspect", folder], naming: config, what: "the values of the JSON file")
    }

    @Test func `a 2 MB adapter_config.json of nested arrays is refused naming it`() throws {
        let directory = TemporaryDirectory("nf4kit-budget-adapter")
        defer { directory.cleanup() }
        let folder = directory.file("adapter")
        try FileManager.default.copyItem(atPath: Fixture.path("llama-tiny/lora"), toPath: folder)
        let config = folder + "/adapter_config.json"
        let original = try String(contentsOfFile: config, encoding: .utf8)
        let padded = "{\"x\":" + Self.nestedArrays(500_000) + "," + original.drop { $0 != "{" }.dropFirst()
        try FileManager.default.removeItem(atPath: config)
        try Array(padded.utf8).write(to: config)
        try Self.expectRefused(["inspect", folder], naming: config, what: "the values of the JSON file")
    }

    @Test func `a 4 MB pickle of two million list items is refused naming the .bin`() throws {
        let directory = TemporaryDirectory("nf4kit-budget-pickle")
        defer { directory.cleanup() }
        // PROTO 2, EMPTY_LIST, then (NONE, APPEND) two million times: 2 bytes per item, a pushed value and a list
        // slot (about 16 times that) in memory.
        var pickle: [UInt8] = [0x80, 0x02, 0x5D]
        pickle.reserveCapacity(4_000_004)
        for _ in 0..<2_000_000 { pickle += [0x4E, 0x61] }
        pickle.append(0x2E)
        let path = directory.file("items.bin")
        try HostileInputCLITests.storedZip([("archive/data.pkl", pickle), ("archive/version", Array("3\n".utf8))])
            .write(to: path)
        try Self.expectRefused(["inspect", path], naming: path, what: "the pickle's")
    }

    @Test func `a deflated zip entry that declares more than the budget is refused before it is inflated`() throws {
        let directory = TemporaryDirectory("nf4kit-budget-inflate")
        defer { directory.cleanup() }
        // 512 KiB of deflate stream declaring 40 MiB: within the 100:1 bomb ratio, past 8 x 0.5 MiB + 16 MiB.
        let records: [(name: String, data: [UInt8], method: UInt16, declared: Int)] = [
            ("archive/version", Array("3\n".utf8), 0, 2),
            ("archive/data.pkl", [UInt8](repeating: 0, count: 512 << 10), 8, 40 << 20),
        ]
        var file: [UInt8] = []
        var central: [UInt8] = []
        for record in records {
            let offset = UInt32(file.count)
            let common =
                Self.le(UInt16(20)) + Self.le(UInt16(0)) + Self.le(record.method) + Self.le(UInt16(0))
                + Self.le(UInt16(0)) + Self.le(UInt32(0)) + Self.le(UInt32(record.data.count))
                + Self.le(UInt32(record.declared)) + Self.le(UInt16(record.name.utf8.count))
            file += Self.le(UInt32(0x0403_4B50)) + common + Self.le(UInt16(0)) + Array(record.name.utf8) + record.data
            central +=
                Self.le(UInt32(0x0201_4B50)) + Self.le(UInt16(20)) + common + Self.le(UInt16(0)) + Self.le(UInt16(0))
                + Self.le(UInt16(0)) + Self.le(UInt16(0)) + Self.le(UInt32(0)) + Self.le(offset)
                + Array(record.name.utf8)
        }
        let centralOffset = UInt32(file.count)
        file += central
        file +=
            Self.le(UInt32(0x0605_4B50)) + Self.le(UInt16(0)) + Self.le(UInt16(0)) + Self.le(UInt16(records.count))
            + Self.le(UInt16(records.count)) + Self.le(UInt32(central.count)) + Self.le(centralOffset)
            + Self.le(UInt16(0))
        let path = directory.file("inflate.bin")
        try file.write(to: path)
        try Self.expectRefused(["inspect", path], naming: path, what: "inflating zip entry 'archive/data.pkl'")
    }
}
