import NF4KitCore
import NF4KitFormats
import NF4KitTestSupport
import Testing

/// Damaged copies of the golden sample: the reader must throw a CheckpointError or succeed, never trap.
@Suite struct GGUFRobustnessTests {
    private func golden() throws -> [UInt8] {
        try MappedRegion(mapping: Fixture.path("gguf/sample.gguf")).all.array
    }

    private func parse(_ bytes: [UInt8]) -> CheckpointError? {
        let region = bytes.withUnsafeBytes { MappedRegion(copying: $0, description: "damaged.gguf") }
        do {
            let file = try GGUFFile(region: region)
            for info in file.tensors { _ = file.bytes(of: info).count }
            return nil
        } catch {
            return error
        }
    }

    @Test func `every truncation of the golden sample throws a data error`() throws {
        let bytes = try golden()
        // The last tensor's data ends 16 bytes before the end (padding), so cuts inside the padding still parse.
        let file = try GGUFFile.read(path: Fixture.path("gguf/sample.gguf"))
        let dataEnd = Int(file.tensors.map { $0.fileOffset + Int64($0.byteCount) }.max() ?? 0)
        for length in 0..<dataEnd {
            let error = parse(Array(bytes.prefix(length)))
            #expect(error?.code.isDataError == true, "cut at \(length)")
            #expect(
                error?.byteOffset.map { $0 <= Int64(length) } == true, "cut at \(length): \(String(describing: error))")
        }
        for length in dataEnd...bytes.count { #expect(parse(Array(bytes.prefix(length))) == nil, "cut at \(length)") }
    }

    @Test func `random byte damage in the header never traps`() throws {
        let bytes = try golden()
        let file = try GGUFFile.read(path: Fixture.path("gguf/sample.gguf"))
        let headerEnd = Int(file.dataStart)
        var rng = SeededGenerator(seed: 5)
        var failures = 0
        for _ in 0..<3000 {
            var damaged = bytes
            for _ in 0..<Int.random(in: 1...4, using: &rng) {
                damaged[Int.random(in: 0..<headerEnd, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
            }
            if let error = parse(damaged) {
                failures += 1
                #expect(error.file == "damaged.gguf")
                #expect(error.byteOffset != nil)
            }
        }
        #expect(failures > 0)
    }
}
