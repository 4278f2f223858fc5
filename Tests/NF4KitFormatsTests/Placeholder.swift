import Testing

@Suite struct FormatsPlaceholderTests {
    @Test func `module builds`() {}
}
