package parse

import (
	"mime"
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"
)

// activeTypes are declared types never taken over a sniffed text/plain or
// octet-stream: a browser would run them if they were ever served inline.
var activeTypes = map[string]bool{
	"text/html": true, "application/xhtml+xml": true, "image/svg+xml": true,
	"text/javascript": true, "application/javascript": true, "application/ecmascript": true,
	"text/xml": true, "application/xml": true, "text/xsl": true,
}

// sniffType returns the attachment's content type: what the bytes say
// (net/http.DetectContentType), refined by the declared type only where
// sniffing cannot tell (application/octet-stream, text/plain).
func sniffType(data []byte, declared string) string {
	sniffed, _, _ := strings.Cut(http.DetectContentType(data), ";")
	if sniffed != "application/octet-stream" && sniffed != "text/plain" {
		return sniffed
	}
	declared = strings.ToLower(strings.TrimSpace(declared))
	if t, _, err := mime.ParseMediaType(declared); err == nil && strings.Count(t, "/") == 1 &&
		t != "application/octet-stream" && !activeTypes[t] && !strings.HasPrefix(t, "multipart/") {
		return t
	}
	return sniffed
}

// extensions for default file names; a fixed table, since
// mime.ExtensionsByType reads the host's /etc/mime.types.
var extensions = map[string]string{
	"image/png": ".png", "image/jpeg": ".jpg", "image/gif": ".gif", "image/webp": ".webp",
	"image/bmp": ".bmp", "image/tiff": ".tif", "image/x-icon": ".ico", "image/heic": ".heic",
	"application/pdf": ".pdf", "application/zip": ".zip", "application/x-gzip": ".gz",
	"application/gzip": ".gz", "application/msword": ".doc",
	"application/vnd.openxmlformats-officedocument.wordprocessingml.document": ".docx",
	"application/vnd.ms-excel": ".xls",
	"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": ".xlsx",
	"text/plain": ".txt", "text/html": ".html", "text/csv": ".csv", "text/calendar": ".ics",
	"message/rfc822": ".eml", "message/global": ".eml", "audio/mpeg": ".mp3", "audio/wave": ".wav",
	"audio/ogg": ".ogg", "video/mp4": ".mp4", "video/webm": ".webm", "application/json": ".json",
	"application/pgp-signature": ".asc", "application/pkcs7-signature": ".p7s",
}

// defaultName names a part that came without a file name, after its type:
// "image.png" for images, "invite.ics" for calendar invites, "message.eml"
// for attached messages, else "attachment" with the type's extension.
func defaultName(sniffed, declared string) string {
	declared = strings.ToLower(declared)
	ext := extensions[sniffed]
	if ext == "" || sniffed == "text/plain" {
		if e := extensions[declared]; e != "" {
			ext = e
		}
	}
	switch {
	case strings.HasPrefix(sniffed, "image/"):
		return "image" + ext
	case declared == "text/calendar" || sniffed == "text/calendar":
		return "invite.ics"
	case strings.HasPrefix(declared, "message/"):
		return "message.eml"
	}
	return "attachment" + ext
}

// cleanFileName keeps the last path element of a sender-supplied name,
// drops control and bidirectional-override characters (which disguise
// "gpj.exe" as "exe.jpg"), trims spaces and dots, and cuts it to 255
// bytes keeping the extension. It returns "" when nothing is left.
func cleanFileName(name string) string {
	name = validString(name)
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	name = strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) {
			return ' '
		}
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == utf8.RuneError {
			return -1
		}
		return r
	}, name)
	name = strings.Trim(name, " .")
	if name == "" {
		return ""
	}
	const max = 255
	if len(name) <= max {
		return name
	}
	ext := ""
	if i := strings.LastIndexByte(name, '.'); i > 0 && len(name)-i <= 16 {
		ext = name[i:]
	}
	stem := name[:len(name)-len(ext)]
	stem = stem[:max-len(ext)]
	for !utf8.ValidString(stem) {
		stem = stem[:len(stem)-1]
	}
	return strings.TrimRight(stem, " .") + ext
}
