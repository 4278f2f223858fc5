import Foundation
import NF4KitCore
import NF4KitTestSupport
import Testing

/// Views of a mapped input are written into an output with `copy_file_range`; anything else, and whatever the
/// kernel does not copy, is written from memory. Either way the output holds the same bytes.
@Suite struct KernelCopyTests {
    @Test func `a mapped view is copied by the kernel and an owned view is written from memory, same bytes`() throws {
        let directory = TemporaryDirectory("nf4kit-kernel-copy")
        defer { directory.cleanup() }
        let input = directory.file("input.bin")
        let pattern = (0..<100_003).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        try pattern.write(to: input)
        let mapped = try MappedRegion(mapping: input).all
        let owned = pattern.withUnsafeBytes { TensorBytes(copying: $0) }

        // The kernel path itself: a mapped view copies all its bytes, an owned one none (the writer falls back).
        let probe = directory.file("probe.bin")
        let fd = open(probe, O_WRONLY | O_CREAT | O_EXCL, 0o644)
        #expect(fd >= 0)
        defer { close(fd) }
        #expect(mapped.region.copy(13..<50_013, into: fd, at: 0) == 50_000)
        #expect(owned.region.copy(13..<50_013, into: fd, at: 0) == 0)

        // Through the output layer: odd offsets and lengths, one part from each kind of view.
        let output = directory.file("output.bin")
        let file = try OutputFile(path: output, overwrite: false, inputs: [input])
        try file.write(mapped.slice(3..<60_001), at: 5)
        try file.write(owned.slice(60_001..<100_003), at: 5 + 59_998)
        try file.finish()
        let expected = [UInt8](repeating: 0, count: 5) + pattern[3..<100_003]
        #expect(try [UInt8](contentsOf: output) == expected)
        #expect(try [UInt8](contentsOf: probe) == Array(pattern[13..<50_013]))
    }

    @Test func `a short kernel copy (the input shrank) falls back to the mapping and ends in an I/O error`() throws {
        let directory = TemporaryDirectory("nf4kit-kernel-copy-short")
        defer { directory.cleanup() }
        let input = directory.file("input.bin")
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        try [UInt8](repeating: 0xCD, count: 4 * page).write(to: input)
        let view = try MappedRegion(mapping: input).all
        #expect(truncate(input, off_t(page)) == 0)
        let output = directory.file("output.bin")
        var reported: CheckpointError?
        do {
            let file = try OutputFile(path: output, overwrite: false, inputs: [input])
            try file.write(view, at: 0)
            try file.finish()
        } catch {
            reported = error
        }
        InputIntegrity.acknowledge(input)
        // The kernel copies the page that is left and stops short; the rest is written from the mapping, where the
        // pages past the new end cannot be read: an I/O error, never a crash, and no output.
        #expect(reported?.code == .io)
        #expect(!FileManager.default.fileExists(atPath: output))
    }
}
