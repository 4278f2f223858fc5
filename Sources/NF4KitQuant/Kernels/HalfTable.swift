/// The 65 536 float32 values of every fp16 bit pattern, built once.
///
/// Baseline x86-64 has no F16C, so `Float(Float16)` is a software routine; a table look-up is about twice as
/// fast (docs/nf4-layout.md, "Performance"). 256 KiB, shared by all threads.
// @unchecked Sendable because the buffer is written once in init and only read afterwards.
final class HalfTable: @unchecked Sendable {
    static let shared = HalfTable()

    let values: UnsafeMutablePointer<Float>

    private init() {
        values = UnsafeMutablePointer<Float>.allocate(capacity: 65_536)
        for bits in 0..<65_536 {
            values[bits] = Float(Float16(bitPattern: UInt16(truncatingIfNeeded: bits)))
        }
    }
}
