import Testing

@Suite struct CLIPlaceholderTests {
    @Test func `module builds`() {}
}
