import Foundation
import NF4KitCore
import NF4KitTestSupport
import Testing

/// An input that becomes shorter while it is memory-mapped used to kill the process with SIGBUS.
@Suite struct ShrunkInputTests {
    @Test func `reading past the new end of a mapped file reads zeros and is reported as an I/O error on that file`()
        throws
    {
        let directory = TemporaryDirectory("nf4kit-shrunk")
        defer { directory.cleanup() }
        let path = directory.file("input.bin")
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        try [UInt8](repeating: 0xAB, count: 4 * page).write(to: path)
        let region = try MappedRegion(mapping: path)
        #expect(truncate(path, off_t(page)) == 0)
        // The last page now lies past the end of the file: without the guard this read is SIGBUS.
        let last = region.withUnsafeBytes { $0[3 * page + 5] }
        let first = region.withUnsafeBytes { $0[5] }
        var reported: CheckpointError?
        do { try InputIntegrity.check() } catch { reported = error }
        InputIntegrity.acknowledge(path)
        #expect(first == 0xAB)
        #expect(last == 0)
        #expect(reported?.code == .io)
        #expect(reported?.file == path)
        #expect(reported?.message.contains("shorter") == true)
    }
}
