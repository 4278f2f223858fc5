import Testing

@Suite struct QuantPlaceholderTests {
    @Test func `module builds`() {}
}
