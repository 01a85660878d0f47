package blob

import (
	"os"
	"testing"
)

// S3URLForTest returns SWITCHBOARD_TEST_S3_URL: a missing server is a failure
// in CI and a skip on a developer's machine (start one with .ci/s3.sh).
func S3URLForTest(t *testing.T) string {
	t.Helper()
	raw := os.Getenv("SWITCHBOARD_TEST_S3_URL")
	if raw == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("SWITCHBOARD_TEST_S3_URL is not set; CI must run the S3 tests (see .ci/s3.sh)")
		}
		t.Skip("SWITCHBOARD_TEST_S3_URL is not set; run: export SWITCHBOARD_TEST_S3_URL=\"$(bash .ci/s3.sh | tail -n 1)\"")
	}
	return raw
}
