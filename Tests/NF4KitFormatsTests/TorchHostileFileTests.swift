import Foundation
import NF4KitCore
import NF4KitFormats
import NF4KitTestSupport
import Testing

/// One hostile fixture and how the reader must refuse it.
struct HostileCase: CustomTestStringConvertible, Sendable {
    var file: String
    var code: CheckpointError.Code
    /// Text the message must contain (the global, entry or limit it names).
    var message: String
    var testDescription: String { file }
}

@Suite struct TorchHostileFileTests {
    static let cases: [HostileCase] = [
        // Globals outside the allow list, named in the message.
        HostileCase(file: "global-os-system", code: .refused, message: "global 'os.system' is not allowed"),
        HostileCase(file: "global-posix-system", code: .refused, message: "global 'posix.system' is not allowed"),
        HostileCase(file: "global-builtins-eval", code: .refused, message: "global 'builtins.eval' is not allowed"),
        HostileCase(
            file: "global-subprocess", code: .refused, message: "global 'subprocess.check_call' is not allowed"),
        HostileCase(
            file: "global-functools-partial", code: .refused, message: "global 'functools.partial' is not allowed"),
        // REDUCE / BUILD / SETITEM / NEWOBJ / persistent ids on things that are not allowed.
        HostileCase(
            file: "reduce-storage-type", code: .refused, message: "calling 'torch.FloatStorage' is not allowed"),
        HostileCase(file: "reduce-on-string", code: .refused, message: "REDUCE on str is not allowed"),
        HostileCase(file: "build-on-list", code: .refused, message: "BUILD on list is not allowed"),
        HostileCase(file: "build-on-tensor", code: .refused, message: "BUILD on tensor is not allowed"),
        HostileCase(file: "setitem-on-list", code: .refused, message: "SETITEM(S) on list is not allowed"),
        HostileCase(
            file: "newobj-other-class", code: .refused,
            message: "NEWOBJ on global 'collections.OrderedDict' is not allowed"),
        HostileCase(file: "persid-not-storage", code: .refused, message: "persistent id must be ('storage'"),
        HostileCase(file: "unknown-opcode", code: .refused, message: "pickle opcode 0x49 (INT) is not allowed"),
        HostileCase(file: "protocol-4", code: .unsupported, message: "pickle protocol 4 is not supported"),
        // Memo, stack and depth abuse.
        HostileCase(file: "memo-unset", code: .malformedHeader, message: "memo entry 7 was never stored"),
        HostileCase(file: "stack-flood", code: .limitExceeded, message: "past the limit of 100000 values"),
        HostileCase(file: "mark-flood", code: .limitExceeded, message: "more than 10000 nested MARKs"),
        HostileCase(file: "deep-nesting", code: .limitExceeded, message: "nest deeper than the limit of 100"),
        HostileCase(file: "list-cycle", code: .refused, message: "puts a list into itself"),
        HostileCase(file: "truncated-pickle", code: .truncated, message: "data.pkl ends inside opcode"),
        // Storages.
        HostileCase(
            file: "record-size-mismatch", code: .malformedHeader,
            message: "has 8 bytes but its persistent id declares 4 × 4 bytes"),
        HostileCase(file: "view-out-of-bounds", code: .malformedHeader, message: "reaches past its storage '0'"),
        HostileCase(
            file: "stride-zero-expansion", code: .malformedHeader, message: "needs more bytes than its storage"),
        HostileCase(file: "missing-record", code: .malformedHeader, message: "'archive/data/9' is missing"),
        // The zip container.
        HostileCase(
            file: "sizes-disagree-central", code: .refused,
            message: "'archive/data/0': is stored but its sizes disagree"),
        HostileCase(file: "sizes-disagree-local", code: .refused, message: "'archive/data/0': sizes disagree"),
        HostileCase(file: "path-traversal", code: .refused, message: "'archive/../../x': the path points outside"),
        HostileCase(file: "absolute-path", code: .refused, message: "'/etc/nf4kit': the path points outside"),
        HostileCase(file: "outside-prefix", code: .refused, message: "'other/x' is outside the archive folder"),
        HostileCase(
            file: "overlapping-entries", code: .refused, message: "'archive/data/0' and 'archive/version' overlap"),
        HostileCase(file: "duplicate-entry", code: .refused, message: "'archive/data/0': appears twice"),
        HostileCase(file: "local-name-mismatch", code: .refused, message: "the local header names 'archive/data/1'"),
        HostileCase(file: "crc-mismatch", code: .malformedHeader, message: "'archive/data/0' has CRC-32"),
        HostileCase(file: "truncated", code: .truncated, message: "no zip end-of-central-directory record"),
        HostileCase(file: "deflate-ratio-bomb", code: .limitExceeded, message: "deflate bomb refused"),
        HostileCase(
            file: "deflate-lies", code: .refused, message: "inflates to more than the declared 8 bytes"),
        HostileCase(file: "torchscript", code: .refused, message: "TorchScript archive"),
        HostileCase(file: "no-version", code: .malformedHeader, message: "has no 'version' record"),
        HostileCase(file: "legacy-truncated", code: .truncated, message: "data.pkl ends inside opcode"),
        HostileCase(
            file: "legacy-count-mismatch", code: .malformedHeader,
            message: "legacy storage '94058547932848' holds 2 elements but its persistent id declares 6"),
        HostileCase(
            file: "legacy-trailing-bytes", code: .malformedHeader, message: "4 bytes follow the last legacy storage"),
        HostileCase(file: "bare-pickle", code: .malformedHeader, message: "bare pickle stream without torch's legacy"),
        HostileCase(file: "lfs-pointer", code: .malformedHeader, message: "Git LFS pointer"),
    ]

    @Test(arguments: cases)
    func `hostile file is refused with a message naming the culprit`(_ hostile: HostileCase) throws {
        let error = try #require(TorchFixture.error("hostile/\(hostile.file).bin"))
        #expect(error.code == hostile.code, "\(error)")
        #expect(error.message.contains(hostile.message), "\(error)")
        #expect(error.file == TorchFixture.path("hostile/\(hostile.file).bin"))
    }

    @Test(arguments: [
        ("global-os-system", "os-system", CheckpointError.Code.refused),
        ("global-posix-system", "posix-system", .refused),
        ("global-builtins-eval", "eval", .refused), ("global-subprocess", "subprocess", .refused),
        ("global-functools-partial", "partial", .refused), ("bare-pickle", "bare-pickle", .malformedHeader),
    ])
    func `code-execution payloads are never executed`(
        _ file: String, _ markerName: String, _ code: CheckpointError.Code
    ) throws {
        let marker = "/tmp/nf4kit-pwned-" + markerName
        try? FileManager.default.removeItem(atPath: marker)
        // The fixture really carries the payload that would create the marker under Python's pickle.
        let bytes = try Data(contentsOf: URL(fileURLWithPath: TorchFixture.path("hostile/\(file).bin")))
        #expect(bytes.range(of: Data(marker.utf8)) != nil)
        let error = try #require(TorchFixture.error("hostile/\(file).bin"))
        #expect(error.code == code)
        #expect(!FileManager.default.fileExists(atPath: marker))
    }

    @Test func `a refused global is located in the file and in data.pkl`() throws {
        let error = try #require(TorchFixture.error("hostile/global-os-system.bin"))
        // data.pkl is the first record, stored at byte 64; GLOBAL follows the 2-byte PROTO.
        #expect(error.byteOffset == 66)
        #expect(error.message.hasSuffix("(data.pkl offset 2)"))
    }

    @Test func `memo entries beyond the limit are refused`() throws {
        var limits = TorchReadLimits()
        limits.maxMemoCount = 1000
        let error = try #require(TorchFixture.error("hostile/memo-flood.bin", limits: limits))
        #expect(error.code == .limitExceeded)
        #expect(error.message.contains("more than 1000 memo entries"))
        // With the default limit the same stream gets past the memo and fails only at its end (no tensors).
        #expect(TorchFixture.error("hostile/memo-flood.bin")?.code == .unsupported)
    }

    @Test func `inflating past the absolute cap is refused before allocating`() throws {
        var limits = TorchReadLimits()
        limits.maxInflatedBytes = 64 << 10
        let error = try #require(TorchFixture.error("hostile/deflate-absolute-cap.bin", limits: limits))
        #expect(error.code == .limitExceeded)
        #expect(error.message.contains("'archive/data/0'"))
        #expect(error.message.contains("past the limit of 65536 bytes"))
    }

    @Test func `the ratio cap exempts small entries but not large ones`() throws {
        // 256 KiB of zeros (ratio ~1000:1) is below the 1 MiB exemption: it inflates and is checked further.
        #expect(TorchFixture.error("hostile/deflate-absolute-cap.bin")?.code == .malformedHeader)
        let error = try #require(TorchFixture.error("hostile/deflate-ratio-bomb.bin"))
        #expect(error.message.contains("ratio above the limit of 100:1"))
    }
}
