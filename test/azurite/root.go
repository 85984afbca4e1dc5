package azurite

// RepoRoot returns the repository's root folder: the first folder above the
// working directory (or this source file) that holds go.mod and
// test/azurite/package.json.
func RepoRoot() (string, error) { return repoRoot() }
