// libFuzzer target: FuzzEntryPoints.adapterConfig on every input (see docs/fuzzing.md).
@_spi(Fuzzing) import NF4Kit

/// The function libFuzzer calls with each input.
@_cdecl("LLVMFuzzerTestOneInput")
public func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    FuzzEntryPoints.adapterConfig(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}

@_silgen_name("LLVMFuzzerRunDriver")
func runDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt

/// SwiftPM names an executable's entry point `<module>_main` (and links `main` to it); whichever `main` the
/// linker keeps, libFuzzer's or this one, runs libFuzzer's driver on ``testOneInput(_:_:)``.
@_cdecl("FuzzAdapterConfig_main")
func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    var count = argc
    var vector = argv
    return runDriver(&count, &vector, testOneInput)
}
