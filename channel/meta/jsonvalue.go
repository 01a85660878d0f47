package meta

import (
	"bytes"
	"encoding/json"
	"strings"
)

// NumberText returns the text of a JSON number, or of a string holding
// one: Graph sends ids, sizes and timestamps either way. ok is false for
// null, an absent value, an empty string or anything else.
func NumberText(raw json.RawMessage) (text string, ok bool) {
	raw = bytes.TrimSpace(raw)
	if IsNull(raw) {
		return "", false
	}
	if raw[0] == '"' {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return "", false
		}
		s = strings.TrimSpace(s)
		return s, s != ""
	}
	var n json.Number
	if json.Unmarshal(raw, &n) != nil {
		return "", false
	}
	return n.String(), true
}

// IsNull reports whether a raw JSON value is absent or null.
func IsNull(raw json.RawMessage) bool {
	t := bytes.TrimSpace(raw)
	return len(t) == 0 || string(t) == "null"
}
