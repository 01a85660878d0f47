// Package web serves what browsers load from Switchboard: for now the
// live-chat widget, GET /widget.js (docs/design.md §6.2), a plain
// JavaScript file embedded in the binary.
package web

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"
	"sync"
)

//go:embed widget/widget.js
var widgetJS []byte

// WidgetJS returns the widget's source.
func WidgetJS() []byte { return bytes.Clone(widgetJS) }

// WidgetCacheControl is how long browsers and proxies keep the widget
// before they ask again. Its URL carries no version, so this is short; a
// revalidation costs a 304 thanks to the ETag.
const WidgetCacheControl = "public, max-age=3600"

var (
	widgetOnce sync.Once
	widgetGz   []byte
	widgetTag  string
)

func prepareWidget() {
	sum := sha256.Sum256(widgetJS)
	widgetTag = `"` + hex.EncodeToString(sum[:12]) + `"`
	var b bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
	zw.Write(widgetJS)
	zw.Close()
	widgetGz = b.Bytes()
}

// Widget serves the widget script, gzipped to clients that take it, with
// an ETag. Any page may load it (it is public, like the site key it reads):
// the session endpoint decides which origins may chat.
func Widget() http.Handler {
	widgetOnce.Do(prepareWidget)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "application/javascript; charset=utf-8")
		h.Set("Cache-Control", WidgetCacheControl)
		h.Set("Vary", "Accept-Encoding")
		h.Set("X-Content-Type-Options", "nosniff")
		// Pages that isolate themselves (COEP) may still load it.
		h.Set("Cross-Origin-Resource-Policy", "cross-origin")
		h.Set("Access-Control-Allow-Origin", "*")
		body, tag := widgetJS, widgetTag
		if acceptsGzip(r.Header.Get("Accept-Encoding")) {
			body, tag = widgetGz, widgetTag[:len(widgetTag)-1]+`-gz"`
			h.Set("Content-Encoding", "gzip")
		}
		h.Set("ETag", tag)
		if match := r.Header.Get("If-None-Match"); match != "" && etagMatch(match, tag) {
			h.Del("Content-Encoding")
			w.WriteHeader(http.StatusNotModified)
			return
		}
		h.Set("Content-Length", strconv.Itoa(len(body)))
		if r.Method == http.MethodHead {
			return
		}
		w.Write(body)
	})
}

func acceptsGzip(v string) bool {
	for _, part := range strings.Split(v, ",") {
		name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(name), "gzip") {
			q := strings.ReplaceAll(params, " ", "")
			return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
		}
	}
	return false
}

// etagMatch reports whether an If-None-Match header names tag (weakly).
func etagMatch(header, tag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == "*" || t == tag {
			return true
		}
	}
	return false
}
