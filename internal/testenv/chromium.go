package testenv

import (
	"os"
	"os/exec"
	"testing"
)

// Chromium returns the path of a Chromium (or Chrome) binary for browser
// tests, or ends the test: with a failure in CI, with a skip elsewhere.
// SWITCHBOARD_TEST_CHROMIUM names one explicitly; otherwise Debian's
// /usr/bin/chromium (scripts/test.sh installs it) or one on the PATH.
func Chromium(tb testing.TB) string {
	tb.Helper()
	if p := os.Getenv("SWITCHBOARD_TEST_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		tb.Fatalf("Chromium is not installed: CI must run the browser tests (scripts/test.sh installs Debian's chromium)")
	}
	tb.Skipf("Chromium is not installed (apt-get install chromium, or set SWITCHBOARD_TEST_CHROMIUM); skipping a browser test")
	return ""
}
