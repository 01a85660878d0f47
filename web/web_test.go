package web_test

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"testing"

	"github.com/switchboard-inbox/switchboard/web"
)

func get(t *testing.T, h http.Handler, method string, header map[string]string) *http.Response {
	t.Helper()
	req := httptest.NewRequest(method, "/widget.js", nil)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func TestWidgetServed(t *testing.T) {
	h := web.Widget()
	src := web.WidgetJS()

	resp := get(t, h, "GET", nil)
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !bytes.Equal(body, src) {
		t.Fatalf("GET: %d, %d bytes; want 200 and the script's %d bytes", resp.StatusCode, len(body), len(src))
	}
	for k, want := range map[string]string{
		"Content-Type":           "application/javascript; charset=utf-8",
		"Cache-Control":          web.WidgetCacheControl,
		"X-Content-Type-Options": "nosniff",
		"Content-Encoding":       "",
	} {
		if got := resp.Header.Get(k); got != want {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}
	tag := resp.Header.Get("ETag")
	if tag == "" {
		t.Fatal("no ETag")
	}

	// Gzipped for clients that take it, under an ETag of its own.
	resp = get(t, h, "GET", map[string]string{"Accept-Encoding": "br, gzip;q=0.8"})
	if resp.Header.Get("Content-Encoding") != "gzip" || resp.Header.Get("ETag") == tag {
		t.Fatalf("gzip: encoding %q, ETag %q", resp.Header.Get("Content-Encoding"), resp.Header.Get("ETag"))
	}
	zr, err := gzip.NewReader(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if unz, _ := io.ReadAll(zr); !bytes.Equal(unz, src) {
		t.Fatal("the gzipped script is not the script")
	}
	if resp := get(t, h, "GET", map[string]string{"Accept-Encoding": "gzip;q=0"}); resp.Header.Get("Content-Encoding") != "" {
		t.Fatal("gzip;q=0 got gzip")
	}

	// Revalidation.
	resp = get(t, h, "GET", map[string]string{"If-None-Match": tag})
	if b, _ := io.ReadAll(resp.Body); resp.StatusCode != http.StatusNotModified || len(b) != 0 {
		t.Fatalf("If-None-Match: %d with %d bytes, want 304 and none", resp.StatusCode, len(b))
	}
	resp = get(t, h, "HEAD", nil)
	if b, _ := io.ReadAll(resp.Body); resp.StatusCode != 200 || len(b) != 0 || resp.Header.Get("Content-Length") == "" {
		t.Fatalf("HEAD: %d with %d bytes", resp.StatusCode, len(b))
	}
}

// TestWidgetSource holds the script to what a strict Content-Security-Policy
// and a host page can live with: no eval or its relatives, no HTML parsed
// from strings (server text goes in with textContent), no inline style
// attributes, and a size worth embedding in every page.
func TestWidgetSource(t *testing.T) {
	src := web.WidgetJS()
	if n := len(src); n > 30<<10 {
		t.Errorf("widget.js is %d bytes, over the 30 KB budget", n)
	}
	for _, bad := range []string{
		`\beval\s*\(`, `new\s+Function\b`, `\bFunction\s*\(`, `setTimeout\(\s*['"]`, `setInterval\(\s*['"]`,
		`\.innerHTML\b`, `\.outerHTML\b`, `insertAdjacentHTML`, `document\.write`, `createContextualFragment`, `DOMParser`,
		`setAttribute\(\s*['"]style['"]`, `javascript:`, `\bimport\s*\(`,
	} {
		if loc := regexp.MustCompile(bad).FindIndex(src); loc != nil {
			t.Errorf("widget.js uses %s: %q", bad, src[max(0, loc[0]-40):min(len(src), loc[1]+40)])
		}
	}
}
