// libFuzzer target: FuzzEntryPoints.safetensors on every input (see docs/fuzzing.md).
@_spi(Fuzzing) import NF4Kit

@_silgen_name("LLVMFuzzerRunDriver")
func runDriver(
    _ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt

/// SwiftPM calls an executable's entry point `<module>_main`; hand control to libFuzzer's driver from there.
@_cdecl("FuzzSafetensors_main")
func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    var count = argc
    var vector = argv
    return runDriver(&count, &vector) { data, size in
        FuzzEntryPoints.safetensors(UnsafeRawBufferPointer(start: data, count: size))
        return 0
    }
}
