import Foundation
import NF4KitCore
import NF4KitFormats
import NF4KitTestSupport
import Testing

@Suite struct TorchMutationTests {
    /// Iterations per file; raise locally (`NF4KIT_TORCH_MUTATIONS`) for a longer run.
    static let iterations = ProcessInfo.processInfo.environment["NF4KIT_TORCH_MUTATIONS"].flatMap(Int.init) ?? 300

    @Test(arguments: [
        "crafted/views.bin", "crafted/views-deflated.bin", "crafted/views-zip64.bin", "crafted/legacy.bin",
    ])
    func `corrupted files throw a CheckpointError and never trap`(_ file: String) throws {
        for verifyCRC in [true, false] { try mutate(file, verifyCRC: verifyCRC) }
    }

    /// With `verifyCRC` off, changes inside data.pkl and the storages reach the unpickler and tensor checks.
    func mutate(_ file: String, verifyCRC: Bool) throws {
        var limits = TorchReadLimits()
        limits.verifyCRC = verifyCRC
        let original = [UInt8](try Data(contentsOf: URL(fileURLWithPath: TorchFixture.path(file))))
        let directory = TemporaryDirectory("torch-mutation")
        defer { directory.cleanup() }
        var random = SeededGenerator(seed: 0x70_7263_6821)
        var refused = 0
        for iteration in 0..<Self.iterations {
            var bytes = original
            // 1-4 random byte changes, sometimes a cut: each run exercises a different parser path.
            for _ in 0..<Int.random(in: 1...4, using: &random) {
                bytes[Int.random(in: 0..<bytes.count, using: &random)] = UInt8.random(in: 0...255, using: &random)
            }
            if Int.random(in: 0..<8, using: &random) == 0 {
                bytes.removeLast(Int.random(in: 1..<bytes.count, using: &random))
            }
            let path = directory.file("\(iteration).bin")
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            do {
                _ = try TorchCheckpointReader.read(path: path, limits: limits)
            } catch {
                #expect(error.file == path)
                refused += 1
            }
            try FileManager.default.removeItem(atPath: path)
        }
        // The strict checks catch most changes; some land in padding or tensor data and still read.
        #expect(refused > Self.iterations / 4)
    }
}
